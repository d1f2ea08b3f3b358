{{/* Names: the release name (ArgoCD sets it to the service name), clipped to 63 characters. */}}
{{- define "microservice.name" -}}
{{- default .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "microservice.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "microservice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "microservice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Selector labels never change over a release's life (a Deployment's selector is immutable). */}}
{{- define "microservice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "microservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "microservice.labels" -}}
{{ include "microservice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Resources the HPA scales on: cpu always, memory when it has a memory target.
*/}}
{{- define "microservice.hpaResources" -}}
{{- $resources := list -}}
{{- if .Values.autoscaling.enabled -}}
{{- $resources = append $resources "cpu" -}}
{{- if .Values.autoscaling.targetMemoryUtilizationPercentage -}}
{{- $resources = append $resources "memory" -}}
{{- end -}}
{{- end -}}
{{- toJson $resources -}}
{{- end -}}

{{/*
Resources the VPA controls, as a JSON list. An active VPA (updateMode other than "Off") and the HPA
must not act on the same resource: the HPA's utilization target is a percentage of the pod's request,
and a VPA that moves the request moves the HPA's yardstick, so the two would chase each other.
Default: memory only while the HPA is on, cpu and memory without it. An explicit
verticalAutoscaling.controlledResources that overlaps the HPA's resources fails the render (the
values schema rejects it too; this also covers --skip-schema-validation).
*/}}
{{- define "microservice.vpaControlledResources" -}}
{{- $vpa := .Values.verticalAutoscaling -}}
{{- $hpaResources := include "microservice.hpaResources" . | fromJsonArray -}}
{{- $default := list "cpu" "memory" -}}
{{- if .Values.autoscaling.enabled -}}
{{- $default = list "memory" -}}
{{- end -}}
{{- $controlled := $vpa.controlledResources | default $default -}}
{{- if ne $vpa.updateMode "Off" -}}
{{- range $controlled -}}
{{- if has . $hpaResources -}}
{{- fail (printf "verticalAutoscaling: updateMode %q would control %s, which the HPA scales on (autoscaling: %s). Use updateMode \"Off\", or let the VPA control memory only and give the HPA no memory target." $vpa.updateMode . (toJson $hpaResources)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $controlled -}}
{{- end -}}
