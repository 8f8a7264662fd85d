{{/*
Helpers of the exporter (`monitoring.exporter`), prefixed with the chart name like every define.
Its own `app.kubernetes.io/name` (`<name>-exporter`): the members' selectors (name + instance: StatefulSet,
headless Service, PodDisruptionBudget, NetworkPolicy) must never match its Pod, nor its selector theirs.
*/}}

{{- define "rolegen-patroni.exporterName" -}}
{{- printf "%s-exporter" (include "rolegen-patroni.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of the exporter's objects: `<fullname>-exporter`. */}}
{{- define "rolegen-patroni.exporterFullname" -}}
{{- printf "%s-exporter" (include "rolegen-patroni.fullname" .) -}}
{{- end -}}

{{/* Selector labels of the exporter: name + instance. */}}
{{- define "rolegen-patroni.exporterSelectorLabels" -}}
app.kubernetes.io/name: {{ include "rolegen-patroni.exporterName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels of the exporter's objects; its version is its image's tag. */}}
{{- define "rolegen-patroni.exporterLabels" -}}
helm.sh/chart: {{ include "rolegen-patroni.chart" . }}
{{ include "rolegen-patroni.exporterSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.monitoring.exporter.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "rolegen-patroni.name" . }}
app.kubernetes.io/component: exporter
{{- end -}}
