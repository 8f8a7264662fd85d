{{/*
Helpers of the standby guard (`witnessGuard.standby`: `rolegen guard`), prefixed with the chart name like every
define. Its own `app.kubernetes.io/name` (`<name>-guard`): the members' selectors (name + instance) must never
match its Pod, nor its selector theirs.
*/}}

{{- define "rolegen-patroni.guardName" -}}
{{- printf "%s-guard" (include "rolegen-patroni.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of the guard's objects: `<fullname>-guard`. The claim's Service on the peer's cluster is
`<fullname>-guard-<cluster>`: the peer spec's `witness.peer_guard.host`.
*/}}
{{- define "rolegen-patroni.guardFullname" -}}
{{- printf "%s-guard" (include "rolegen-patroni.fullname" .) -}}
{{- end -}}

{{/* Selector labels of the guard: name + instance. */}}
{{- define "rolegen-patroni.guardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "rolegen-patroni.guardName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels of the guard's objects; its version is its image's tag. */}}
{{- define "rolegen-patroni.guardLabels" -}}
helm.sh/chart: {{ include "rolegen-patroni.chart" . }}
{{ include "rolegen-patroni.guardSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.witnessGuard.standby.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "rolegen-patroni.name" . }}
app.kubernetes.io/component: standby-guard
{{- end -}}

{{/* The guard's containers: non-root, nothing writable but its emptyDirs. */}}
{{- define "rolegen-patroni.guardContainerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
readOnlyRootFilesystem: true
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}
