{{/*
Helpers of rolegen-patroni. Every define is prefixed with the chart name.
*/}}

{{/* Chart name, overridable. */}}
{{- define "rolegen-patroni.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object name prefix: the release name (so the leader Service is `<release>-master`), or fullnameOverride.
Kept at 45 characters so `<fullname>-static-config` fits a DNS label.
*/}}
{{- define "rolegen-patroni.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- end -}}

{{- define "rolegen-patroni.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels of every object the chart owns (not of `<scope>-config`, see dcsLabels). */}}
{{- define "rolegen-patroni.labels" -}}
helm.sh/chart: {{ include "rolegen-patroni.chart" . }}
{{ include "rolegen-patroni.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "rolegen-patroni.name" . }}
{{- end -}}

{{/* Selector labels: name + instance. */}}
{{- define "rolegen-patroni.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rolegen-patroni.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Patroni's `kubernetes.labels` (default `application: patroni`). */}}
{{- define "rolegen-patroni.patroniLabels" -}}
{{- $labels := .Values.patroni.labels | default (dict "application" "patroni") -}}
{{- toYaml $labels -}}
{{- end -}}

{{/*
Labels Patroni selects its Pods and ConfigMaps by: `kubernetes.labels` plus `cluster-name: <scope>`.
`<scope>-config` carries exactly these.
*/}}
{{- define "rolegen-patroni.dcsLabels" -}}
{{- $labels := deepCopy (.Values.patroni.labels | default (dict "application" "patroni")) -}}
{{- $_ := set $labels "cluster-name" .Values.patroni.scope -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "rolegen-patroni.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rolegen-patroni.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rolegen-patroni.masterServiceName" -}}
{{- printf "%s-master" (include "rolegen-patroni.fullname" .) -}}
{{- end -}}

{{- define "rolegen-patroni.headlessServiceName" -}}
{{- printf "%s-headless" (include "rolegen-patroni.fullname" .) -}}
{{- end -}}

{{- define "rolegen-patroni.staticConfigName" -}}
{{- printf "%s-static-config" (include "rolegen-patroni.fullname" .) -}}
{{- end -}}

{{/* Where the TLS Secret is mounted in the member containers. */}}
{{- define "rolegen-patroni.tlsDir" -}}
{{- .Values.tls.mountPath | default "/etc/patroni-tls" | trimSuffix "/" -}}
{{- end -}}

{{/* HTTPS when the REST API serves TLS (probes follow). */}}
{{- define "rolegen-patroni.restApiScheme" -}}
{{- if and (ne .Values.tls.mode "disabled") .Values.tls.restApi -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* PGDATA inside the member volume. */}}
{{- define "rolegen-patroni.dataDir" -}}
{{- printf "%s/pgroot/data" (.Values.persistence.mountPath | trimSuffix "/") -}}
{{- end -}}

{{/*
The DCS `config` annotation: `patroni.dynamic`, plus for a standby-leader
`standby_cluster: {host: peer.host, port: peer.port, ...patroni.standby}`.
toRawJson is compact with sorted keys and, unlike toJson, does not escape <, > and & (rolegen's
dumps_json does not either), so the annotation is byte-identical to rolegen's patch.
*/}}
{{/*
The DR slot whose WAL files/dr_slot.py releases after a promotion from standby cluster, or "": only with a peer
(without one there is no standby cluster to tell apart).
*/}}
{{- define "rolegen-patroni.drSlot" -}}
{{- if .Values.peer.host }}{{ .Values.patroni.drSlot }}{{ end -}}
{{- end }}

{{- define "rolegen-patroni.dcsConfig" -}}
{{- $config := deepCopy (.Values.patroni.dynamic | default dict) -}}
{{- if eq .Values.role "standby-leader" -}}
{{- $standby := deepCopy (.Values.patroni.standby | default dict) -}}
{{- $_ := set $standby "host" .Values.peer.host -}}
{{- $_ := set $standby "port" .Values.peer.port -}}
{{- $_ := set $config "standby_cluster" $standby -}}
{{- end -}}
{{- toRawJson $config -}}
{{- end -}}

{{/*
The `config` annotation as Helm writes it: rendered from the role only while `<scope>-config` does not exist
(install, or a re-install after it was deleted); afterwards the live annotation, carried through unchanged
(`lookup`). The role and hand-set keys are then rolegen's to write (role verbs, `rolegen apply`), never Helm's:
an upgrade that re-rendered the role would promote or demote a site, and Helm 4's server-side apply would drop
every key set by hand (pause, failsafe_mode, ...). Offline (`helm template`) lookup finds nothing: the role
renders.
*/}}
{{- define "rolegen-patroni.dcsConfigAnnotation" -}}
{{- $live := lookup "v1" "ConfigMap" .Release.Namespace (printf "%s-config" .Values.patroni.scope) | default dict -}}
{{- $annotations := (get ($live.metadata | default dict) "annotations") | default dict -}}
{{- if hasKey $annotations "config" -}}
{{- get $annotations "config" -}}
{{- else -}}
{{- include "rolegen-patroni.dcsConfig" . -}}
{{- end -}}
{{- end -}}

{{/*
Checks the schema cannot express. All messages are collected and reported in one `fail`.
*/}}
{{- define "rolegen-patroni.validateValues" -}}
{{- $messages := list -}}
{{- range $name := list "superuser" "replication" "rewind" -}}
{{- if not (get (get $.Values.auth $name | default dict) "existingSecret") -}}
{{- $messages = append $messages (printf "auth.%s.existingSecret: required (a Secret with keys username and password)" $name) -}}
{{- end -}}
{{- end -}}
{{- if and (ne .Values.tls.mode "disabled") (not .Values.tls.existingSecret) -}}
{{- $messages = append $messages (printf "tls.existingSecret: required with tls.mode %s (a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt), or set tls.mode: disabled" .Values.tls.mode) -}}
{{- end -}}
{{- if and (eq .Values.tls.mode "disabled") (or .Values.tls.clientCert .Values.tls.restApi) -}}
{{- $messages = append $messages "tls.clientCert/tls.restApi: need TLS; tls.mode is disabled" -}}
{{- end -}}
{{- if and .Values.peer.host (eq .Values.peer.host (include "rolegen-patroni.masterServiceName" .)) -}}
{{- $messages = append $messages (printf "peer.host: %q is this release's own leader Service; a standby must follow the other site" .Values.peer.host) -}}
{{- end -}}
{{- if hasKey (.Values.patroni.dynamic | default dict) "standby_cluster" -}}
{{- $messages = append $messages "patroni.dynamic.standby_cluster: not allowed; the role decides standby_cluster (host/port from peer, extra keys from patroni.standby)" -}}
{{- end -}}
{{- range $key := list "host" "port" -}}
{{- if hasKey ($.Values.patroni.standby | default dict) $key -}}
{{- $messages = append $messages (printf "patroni.standby.%s: not allowed; it comes from peer.%s" $key $key) -}}
{{- end -}}
{{- end -}}
{{- range $key, $_ := (.Values.patroni.labels | default dict) -}}
{{- if or (eq $key "cluster-name" "role") (hasPrefix "app.kubernetes.io/" $key) -}}
{{- $messages = append $messages (printf "patroni.labels.%s: reserved (cluster-name and role are Patroni's, app.kubernetes.io/* the chart's)" $key) -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.witnessGuard.mode "automatic" -}}
{{- range $key := list "site" "namespace" "lease" "existingSecret" -}}
{{- if not (get $.Values.witnessGuard $key) -}}
{{- $messages = append $messages (printf "witnessGuard.%s: required with witnessGuard.mode automatic" $key) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.startupGuard.enabled -}}
{{- $messages = append $messages "witnessGuard.mode: automatic needs startupGuard.enabled (the witness guard fences through it)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.witnessGuard.standby.enabled (ne .Values.witnessGuard.mode "automatic") -}}
{{- $messages = append $messages "witnessGuard.standby.enabled: needs witnessGuard.mode automatic (rolegen guard runs only for an automatic witness)" -}}
{{- end -}}
{{- if $messages -}}
{{- fail (printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages)) -}}
{{- end -}}
{{- end -}}
