#!/bin/bash
# Boot script of a Pulumi Deployments agent host (rendered by components/agent.py, which fills in
# the at-sign placeholders). The set-up Pulumi documents for EC2 (pulumi/customer-managed-workflow-agent
# v2.2.0, agent-images/: Docker installed, the release's agent binary run by systemd): the agent
# runs on the host and starts each job in a Docker container with the release's linux/amd64
# `workflow-runner-embeddable`. Every failure is loud: the launch is abandoned (the group replaces
# the host) and the reason is on the console and in the journal. AGENT_HOST_ROOT is empty on a
# host; tests run this script in a scratch directory with stub commands.
set -euo pipefail

ROOT="${AGENT_HOST_ROOT:-}"
LIB="$ROOT/usr/local/lib/pulumi-agent"
UNITS="$ROOT/etc/systemd/system"
INSTALL="$ROOT@@INSTALL_DIR@@"
VERSION='@@VERSION@@'
SECRET_ID='@@SECRET_ID@@'
RELEASES='https://github.com/pulumi/customer-managed-workflow-agent/releases/download'

install -d -m 0755 "$LIB" "$UNITS" "$INSTALL"
# What the units' scripts share with this one: the group, its hooks, IMDSv2, a loud log line.
cat > "$LIB/common.sh" <<'COMMON'
REGION='@@REGION@@'
GROUP='@@GROUP@@'
LAUNCH_HOOK='@@LAUNCH_HOOK@@'
TERMINATION_HOOK='@@TERMINATION_HOOK@@'
say() {
  echo "pulumi-agent: $*" >&2
  logger -t pulumi-agent -- "$*" 2>/dev/null || true
}
imds() {
  local token
  token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
instance_id() {
  local id
  id=$(imds instance-id)
  [ -n "$id" ] || { say "IMDS returned no instance id"; return 1; }
  echo "$id"
}
lifecycle() {  # lifecycle <hook> <CONTINUE|ABANDON>
  aws autoscaling complete-lifecycle-action --region "$REGION" --auto-scaling-group-name "$GROUP" \
    --lifecycle-hook-name "$1" --instance-id "$ID" --lifecycle-action-result "$2"
}
COMMON
# shellcheck source=/dev/null
. "$LIB/common.sh"
ID=""

abandon() {
  local status=$? line=$1
  trap - ERR
  say "FAILED (line $line, exit $status): the agent does not run on ${ID:-this host (no instance ID)}; abandoning the launch so the group replaces this host"
  lifecycle "$LAUNCH_HOOK" ABANDON || say "could not abandon the launch; the hook's timeout abandons it"
  exit "$status"
}
trap 'abandon $LINENO' ERR
# After the trap: an IMDS failure here is loud too (the FAILED line; without an ID the launch
# hook's timeout abandons the launch).
ID=$(instance_id)
fail() {
  say "$*"
  return 1
}

dnf install -y docker
systemctl enable --now docker.service

# The linux/amd64 release archive, checked against the release's checksums.txt (.goreleaser.yaml:
# archive name `customer-managed-workflow-agent-<tag>-linux-x64`, the same name install.sh fetches).
tarball="customer-managed-workflow-agent-$VERSION-linux-x64.tar.gz"
work=$(mktemp -d)
curl -fsSL --retry 3 -o "$work/$tarball" "$RELEASES/$VERSION/$tarball"
curl -fsSL --retry 3 -o "$work/checksums.txt" "$RELEASES/$VERSION/checksums.txt"
awk -v f="$tarball" -v d="$work" '$2 == f { print $1 "  " d "/" f }' "$work/checksums.txt" > "$work/expected"
[ -s "$work/expected" ] || fail "checksums.txt of $VERSION does not list $tarball"
sha256sum --strict -c "$work/expected"
tar -xzf "$work/$tarball" -C "$work"
cp -R "$work/customer-managed-workflow-agent/." "$INSTALL/"
for binary in customer-managed-workflow-agent workflow-runner-embeddable; do
  [ -x "$INSTALL/$binary" ] || fail "the $VERSION archive has no executable $binary"
done
rm -rf "$work"

# The pool token: assigned first, so a failing `aws` stops the script (inside printf it would not).
token=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_ID" \
  --query SecretString --output text)
if [ -z "$token" ] || [ "$token" = "None" ]; then
  fail "the pool token in $SECRET_ID is empty"
fi
case "$token" in
  *[!A-Za-z0-9_-]*) fail "the value of $SECRET_ID is not a Pulumi access token" ;;
esac
# The agent's settings file beside its binary (pulumi-workflow-agent.yaml.sample; agent-images/).
umask 077
cat > "$INSTALL/pulumi-workflow-agent.yaml" <<EOF
token: "$token"
service_url: https://api.pulumi.com
workflow_runners_directory: @@INSTALL_DIR@@
workflow_runners_embeddable: @@INSTALL_DIR@@/workflow-runner-embeddable
EOF
umask 022
unset token

# systemd restarts a crashed agent; five exits in five minutes fail the unit, and its OnFailure
# unit reports the host unhealthy, so the group replaces it (no load balancer checks this group).
cat > "$UNITS/pulumi-agent.service" <<EOF
[Unit]
Description=Pulumi Deployments workflow agent $VERSION
Requires=docker.service
After=docker.service network-online.target
Wants=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=5
OnFailure=pulumi-agent-unhealthy.service

[Service]
WorkingDirectory=@@INSTALL_DIR@@
ExecStart=@@INSTALL_DIR@@/customer-managed-workflow-agent run
Restart=always
RestartSec=10
KillMode=process

[Install]
WantedBy=multi-user.target
EOF
cat > "$UNITS/pulumi-agent-unhealthy.service" <<'EOF'
[Unit]
Description=Report this agent host unhealthy to its Auto Scaling group

[Service]
Type=oneshot
ExecStart=/usr/local/lib/pulumi-agent/report-unhealthy
EOF
cat > "$UNITS/pulumi-agent-drain.service" <<'EOF'
[Unit]
Description=Hold this host's termination until the agent's job has finished
After=pulumi-agent.service

[Service]
ExecStart=/usr/local/lib/pulumi-agent/drain
Restart=on-failure
RestartSec=15

[Install]
WantedBy=multi-user.target
EOF

cat > "$LIB/report-unhealthy" <<'EOF'
#!/bin/bash
set -euo pipefail
# shellcheck source=/dev/null
. "${AGENT_HOST_ROOT:-}/usr/local/lib/pulumi-agent/common.sh"
ID=$(instance_id)
say "the agent keeps failing on $ID: reporting the host unhealthy so the group replaces it"
aws autoscaling set-instance-health --region "$REGION" --instance-id "$ID" \
  --health-status Unhealthy --no-should-respect-grace-period
EOF

# The agent says nothing of a running job (/healthz has status and lastActivity only,
# kubernetes/README.md at v2.2.0), but each job is a container the agent starts, and nothing else
# runs containers here: the host is busy while Docker runs one.
cat > "$LIB/drain" <<'EOF'
#!/bin/bash
set -euo pipefail
# shellcheck source=/dev/null
. "${AGENT_HOST_ROOT:-}/usr/local/lib/pulumi-agent/common.sh"
ID=$(instance_id)
until [ "$(imds autoscaling/target-lifecycle-state || true)" = "Terminated" ]; do
  sleep 15
done
busy() { [ -n "$(docker ps --quiet)" ]; }
wait_idle() {
  while busy; do
    say "termination of $ID held: a job is running"
    aws autoscaling record-lifecycle-action-heartbeat --region "$REGION" --auto-scaling-group-name "$GROUP" \
      --lifecycle-hook-name "$TERMINATION_HOOK" --instance-id "$ID" || say "the heartbeat was refused"
    sleep 60
  done
}
wait_idle
systemctl stop pulumi-agent.service
wait_idle  # a job claimed in the moment before the agent stopped runs to its end
say "no job is running: letting the group terminate $ID"
lifecycle "$TERMINATION_HOOK" CONTINUE
EOF
chmod 0755 "$LIB/report-unhealthy" "$LIB/drain"

systemctl daemon-reload
systemctl enable --now pulumi-agent.service pulumi-agent-drain.service
# Running, and still running after a restart or two would have shown: then the host goes in service.
sleep 30
systemctl is-active --quiet pulumi-agent.service || fail "the agent did not stay up: journalctl -u pulumi-agent"
trap - ERR
lifecycle "$LAUNCH_HOOK" CONTINUE
say "agent $VERSION running on $ID"
