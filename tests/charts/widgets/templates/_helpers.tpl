{{- define "widgets.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
