{{/* Names and labels shared by every template. */}}

{{- define "flagops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flagops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "flagops.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "flagops.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flagops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flagops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Shards: called with (dict "root" $ "shard" i). One shard keeps today's names and labels. */}}
{{- define "flagops.shardName" -}}
{{- if gt (int .root.Values.shards) 1 -}}
{{- printf "%s-shard-%d" (include "flagops.fullname" .root) (int .shard) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "flagops.fullname" .root -}}
{{- end -}}
{{- end -}}

{{- define "flagops.shardLabels" -}}
{{- if gt (int .root.Values.shards) 1 -}}
flagops.dev/shard: {{ .shard | quote }}
{{- end -}}
{{- end -}}

{{/* The kopf peering of a shard: shard 0 keeps the base name (controller/shard.py). */}}
{{- define "flagops.shardPeering" -}}
{{- if eq (int .shard) 0 -}}
{{- .root.Values.peering -}}
{{- else -}}
{{- printf "%s-shard-%d" .root.Values.peering (int .shard) -}}
{{- end -}}
{{- end -}}

{{- define "flagops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "flagops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flagops
{{- end -}}

{{- define "flagops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flagops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flagops.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The namespaced rules, shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "flagops.namespacedRules" -}}
# Watched resources: kopf patches them (finalizers, progress annotations).
# get adds nothing to what list already reveals, and lets handlers read one object.
- apiGroups: [flagops.dev]
  resources: [featureflags, rollouts]
  verbs: [get, list, watch, patch]
- apiGroups: [flagops.dev]
  resources: [featureflags/status, rollouts/status]
  verbs: [get, patch, update]
# The flag ConfigMap (created, restored, rewritten) and the copies shared into other
# namespaces (deleted when no flag is shared there any more; docs/sharing.md).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
# Health probe Jobs and their pods (the probe's termination message).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Events on Rollouts and FeatureFlags.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* probeEnv map -> "NAME=value,NAME2=value2" (FLAGOPS_PROBE_ENV), sorted for stable renders. */}}
{{- define "flagops.probeEnv" -}}
{{- $pairs := list -}}
{{- range $name, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%v" $name $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The relay: its own name, labels, ServiceAccount and tokens Secret. */}}
{{- define "flagops.relay.fullname" -}}
{{- printf "%s-relay" (include "flagops.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flagops.relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flagops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: relay
{{- end -}}

{{- define "flagops.relay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "flagops.relay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flagops
{{- end -}}

{{- define "flagops.relay.serviceAccountName" -}}
{{- if .Values.relay.serviceAccount.create -}}
{{- default (include "flagops.relay.fullname" .) .Values.relay.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.relay.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flagops.relay.tokensSecret" -}}
{{- default (printf "%s-tokens" (include "flagops.relay.fullname" .)) .Values.relay.tokens.secretName -}}
{{- end -}}

{{- define "flagops.relay.image" -}}
{{- $repository := default .Values.image.repository .Values.relay.image.repository -}}
{{- printf "%s:%s" $repository (default (default .Chart.AppVersion .Values.image.tag) .Values.relay.image.tag) -}}
{{- end -}}

