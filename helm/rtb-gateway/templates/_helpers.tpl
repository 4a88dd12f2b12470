{{/* vim: set filetype=mustache: */}}

{{/*
Expand the name of the chart.
*/}}
{{- define "rtb-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated at 63 characters (DNS label limit).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "rtb-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Namespace for every object.
*/}}
{{- define "rtb-gateway.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "rtb-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels (Kubernetes recommended labels), plus commonLabels.
*/}}
{{- define "rtb-gateway.labels" -}}
helm.sh/chart: {{ include "rtb-gateway.chart" . }}
{{ include "rtb-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ include "rtb-gateway.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rtb-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: immutable on a Deployment, so never anything that changes on upgrade.
*/}}
{{- define "rtb-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rtb-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the gateway pods (the dev Redis and the test pod share the instance
labels but carry another component).
*/}}
{{- define "rtb-gateway.gatewaySelectorLabels" -}}
{{ include "rtb-gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Render a value that may contain templates (bitnami common.tplvalues.render).
Usage: {{ include "rtb-gateway.tplvalues.render" (dict "value" .Values.x "context" $) }}
*/}}
{{- define "rtb-gateway.tplvalues.render" -}}
{{- if typeIs "string" .value }}
{{- tpl .value .context }}
{{- else }}
{{- tpl (.value | toYaml) .context }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "rtb-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rtb-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag (appVersion unless image.tag is set).
*/}}
{{- define "rtb-gateway.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Full image reference: [registry/]repository(:tag|@digest).
*/}}
{{- define "rtb-gateway.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (include "rtb-gateway.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Image pull secrets (names or {name: ...} entries).
*/}}
{{- define "rtb-gateway.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
{{- if kindIs "map" . }}
  - name: {{ .name }}
{{- else }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Names of the objects the chart creates.
*/}}
{{- define "rtb-gateway.configMapName" -}}
{{- include "rtb-gateway.fullname" . }}
{{- end }}

{{- define "rtb-gateway.secretName" -}}
{{- include "rtb-gateway.fullname" . }}
{{- end }}

{{- define "rtb-gateway.redisDevName" -}}
{{- printf "%s-redis-dev" (include "rtb-gateway.fullname" . | trunc 53 | trimSuffix "-") }}
{{- end }}

{{/*
Is a Redis configured at all? ("true" or "")
*/}}
{{- define "rtb-gateway.redisEnabled" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret .Values.redis.deploy }}true{{- end }}
{{- end }}

{{/*
Does the chart create its Secret? (Redis URL or extraSecretEnv to store.) ("true" or "")
*/}}
{{- define "rtb-gateway.createSecret" -}}
{{- if or (and (not .Values.redis.existingSecret) (or .Values.redis.url .Values.redis.deploy)) .Values.extraSecretEnv (include "rtb-gateway.ownLedgerSecrets" .) }}true{{- end }}
{{- end }}

{{/*
Does the chart's Secret hold any of the ledger/admin secrets? ("true" or "")
*/}}
{{- define "rtb-gateway.ownLedgerSecrets" -}}
{{- if or (and .Values.ledger.url (not .Values.ledger.existingSecret)) (and .Values.ledger.hmacSecret (not .Values.ledger.hmacExistingSecret)) (and .Values.admin.token (not .Values.admin.existingSecret)) }}true{{- end }}
{{- end }}

{{/*
The ledger's and admin routes' secret environment (GATEWAY_LEDGER_URL, GATEWAY_LEDGER_SECRET,
GATEWAY_ADMIN_TOKEN), each from an existing Secret when named, else from the chart's.
*/}}
{{- define "rtb-gateway.ledgerEnv" -}}
{{- $own := include "rtb-gateway.secretName" . }}
{{- range $item := list (list "GATEWAY_LEDGER_URL" .Values.ledger.url .Values.ledger.existingSecret .Values.ledger.existingSecretKey "ledger-url") (list "GATEWAY_LEDGER_SECRET" .Values.ledger.hmacSecret .Values.ledger.hmacExistingSecret .Values.ledger.hmacExistingSecretKey "ledger-secret") (list "GATEWAY_ADMIN_TOKEN" .Values.admin.token .Values.admin.existingSecret .Values.admin.existingSecretKey "admin-token") }}
{{- $name := index $item 0 }}{{- $value := index $item 1 }}{{- $existing := index $item 2 }}
{{- if or $value $existing }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ default $own $existing }}
      key: {{ if $existing }}{{ index $item 3 }}{{ else }}{{ index $item 4 }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rtb-gateway.ledgerEnabled" -}}
{{- if or .Values.ledger.url .Values.ledger.existingSecret .Values.ledger.hmacSecret .Values.ledger.hmacExistingSecret .Values.admin.token .Values.admin.existingSecret }}true{{- end }}
{{- end }}

{{/*
Secret and key the gateway reads GATEWAY_REDIS_URL from.
*/}}
{{- define "rtb-gateway.redisSecretName" -}}
{{- default (include "rtb-gateway.secretName" .) .Values.redis.existingSecret }}
{{- end }}

{{- define "rtb-gateway.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{/*
Redis URL the chart stores (the dev Redis's when redis.deploy is on).
*/}}
{{- define "rtb-gateway.redisUrl" -}}
{{- if .Values.redis.deploy }}
{{- printf "redis://%s.%s.svc:6379/0" (include "rtb-gateway.redisDevName" .) (include "rtb-gateway.namespace" .) }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{/*
Graceful shutdown arithmetic (see values.yaml "Graceful shutdown").
preStop sleep defaults to the gateway's drain delay; the grace period must cover
preStop + drain delay + one forwarded ping's budget, plus a buffer.
*/}}
{{- define "rtb-gateway.preStopSleepSeconds" -}}
{{- if kindIs "invalid" .Values.lifecycle.preStopSleepSeconds }}
{{- int .Values.config.drainDelayS }}
{{- else }}
{{- int .Values.lifecycle.preStopSleepSeconds }}
{{- end }}
{{- end }}

{{- define "rtb-gateway.minimumGracePeriodSeconds" -}}
{{- $preStop := int (include "rtb-gateway.preStopSleepSeconds" .) }}
{{- $drain := int .Values.config.drainDelayS }}
{{- $request := int (ceil (divf (int .Values.config.rtbTimeoutMs) 1000.0)) }}
{{- add $preStop $drain $request }}
{{- end }}

{{- define "rtb-gateway.terminationGracePeriodSeconds" -}}
{{- $minimum := int (include "rtb-gateway.minimumGracePeriodSeconds" .) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $minimum (int .Values.shutdownBufferSeconds) }}
{{- else }}
{{- if lt (int .Values.terminationGracePeriodSeconds) $minimum }}
{{- fail (printf "terminationGracePeriodSeconds=%d is shorter than preStop sleep + config.drainDelayS + config.rtbTimeoutMs (%d s): pods would be killed mid-drain. Raise it, or leave it null to have it computed." (int .Values.terminationGracePeriodSeconds) $minimum) }}
{{- end }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
Checks that JSON schema cannot express; called from the Deployment.
*/}}
{{- define "rtb-gateway.validateValues" -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (kindIs "invalid" .Values.autoscaling.targetCPU) (kindIs "invalid" .Values.autoscaling.targetMemory) }}
{{- fail "autoscaling.enabled needs autoscaling.targetCPU or autoscaling.targetMemory" }}
{{- end }}
{{- if and .Values.autoscaling.enabled .Values.autoscaling.targetCPU (not (and .Values.resources .Values.resources.requests .Values.resources.requests.cpu)) }}
{{- fail "autoscaling.targetCPU is a percentage of resources.requests.cpu: set resources.requests.cpu" }}
{{- end }}
{{- if and .Values.autoscaling.enabled .Values.autoscaling.targetMemory (not (and .Values.resources .Values.resources.requests .Values.resources.requests.memory)) }}
{{- fail "autoscaling.targetMemory is a percentage of resources.requests.memory: set resources.requests.memory" }}
{{- end }}
{{- if and .Values.redis.deploy (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "redis.deploy=true starts a development Redis; it cannot be combined with redis.url or redis.existingSecret" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hostname) (not .Values.ingress.extraHosts) }}
{{- fail "ingress.enabled needs ingress.hostname or ingress.extraHosts" }}
{{- end }}
{{- end }}

{{/*
Topology spread constraints: custom ones, or the defaults (nodes, then zones).
*/}}
{{- define "rtb-gateway.topologySpreadConstraints" -}}
{{- if .Values.topologySpreadConstraints }}
{{- include "rtb-gateway.tplvalues.render" (dict "value" .Values.topologySpreadConstraints "context" .) }}
{{- else if .Values.topologySpread.enabled }}
{{- if .Values.topologySpread.nodes }}
- maxSkew: {{ .Values.topologySpread.maxSkew }}
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: {{ .Values.topologySpread.nodes }}
  labelSelector:
    matchLabels:
      {{- include "rtb-gateway.gatewaySelectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- if .Values.topologySpread.zones }}
- maxSkew: {{ .Values.topologySpread.maxSkew }}
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ .Values.topologySpread.zones }}
  labelSelector:
    matchLabels:
      {{- include "rtb-gateway.gatewaySelectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end }}
{{- end }}

{{/*
env / envFrom of the gateway container (and of the check-config init container).
*/}}
{{- define "rtb-gateway.containerEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "rtb-gateway.configMapName" . }}
  {{- with .Values.extraEnvVarsCM }}
  - configMapRef:
      name: {{ include "rtb-gateway.tplvalues.render" (dict "value" . "context" $) }}
  {{- end }}
  {{- with .Values.extraEnvVarsSecret }}
  - secretRef:
      name: {{ include "rtb-gateway.tplvalues.render" (dict "value" . "context" $) }}
  {{- end }}
{{- if or (include "rtb-gateway.redisEnabled" .) .Values.extraSecretEnv .Values.extraEnvVars (include "rtb-gateway.ledgerEnabled" .) }}
env:
  {{- if include "rtb-gateway.redisEnabled" . }}
  - name: GATEWAY_REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "rtb-gateway.redisSecretName" . }}
        key: {{ include "rtb-gateway.redisSecretKey" . }}
  {{- end }}
  {{- if include "rtb-gateway.ledgerEnabled" . }}
  {{- include "rtb-gateway.ledgerEnv" . | trim | nindent 2 }}
  {{- end }}
  {{- range $name, $_ := .Values.extraSecretEnv }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ include "rtb-gateway.secretName" $ }}
        key: {{ $name }}
  {{- end }}
  {{- with .Values.extraEnvVars }}
  {{- include "rtb-gateway.tplvalues.render" (dict "value" . "context" $) | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}
