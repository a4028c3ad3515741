{{/* Names, labels, the MADRASA_* settings and the pieces every pod shares. */}}

{{- define "madrasa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "madrasa.fullname" -}}
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

{{- define "madrasa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "madrasa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: pass (dict "root" $ "component" "web"). */}}
{{- define "madrasa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "madrasa.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "madrasa.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "madrasa.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "madrasa.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "madrasa.publicUrl" -}}
{{- default (printf "https://%s" .Values.baseDomain) .Values.publicUrl }}
{{- end }}

{{/*
The non-secret MADRASA_* settings (core/config.py), as YAML "KEY: value" lines: the ConfigMap holds them for
web, worker and CronJob pods; the migration Job, a pre-install hook that runs before the ConfigMap exists,
receives the same lines as plain environment variables.
*/}}
{{- define "madrasa.settings" -}}
{{- $c := .Values.config }}
MADRASA_BASE_DOMAIN: {{ .Values.baseDomain | quote }}
MADRASA_PUBLIC_URL: {{ include "madrasa.publicUrl" . | quote }}
MADRASA_HOST: "0.0.0.0"
MADRASA_PORT: {{ .Values.web.port | quote }}
MADRASA_METRICS_PORT: {{ .Values.web.metricsPort | quote }}
MADRASA_DATA_DIR: "/var/lib/madrasa"
MADRASA_FONT_CACHE: "/tmp/madrasa-fonts"
MADRASA_JOB_BACKEND: {{ ternary "saq" "inprocess" .Values.worker.enabled | quote }}
MADRASA_JOB_QUEUE_NAME: {{ $c.jobQueueName | quote }}
MADRASA_JOB_CONCURRENCY: {{ $c.jobConcurrency | quote }}
MADRASA_JOB_TIMEOUT: {{ $c.jobTimeout | quote }}
MADRASA_STORAGE_BACKEND: {{ $c.storage.backend | quote }}
MADRASA_S3_ENDPOINT: {{ $c.storage.s3Endpoint | quote }}
MADRASA_S3_BUCKET: {{ $c.storage.s3Bucket | quote }}
MADRASA_S3_SECURE: {{ $c.storage.s3Secure | quote }}
MADRASA_S3_REGION: {{ $c.storage.s3Region | quote }}
MADRASA_MAX_UPLOAD_BYTES: {{ $c.maxUploadBytes | int64 | quote }}
MADRASA_ONBOARDING_MAX_BYTES: {{ $c.onboardingMaxBytes | int64 | quote }}
MADRASA_DB_POOL_MIN: {{ $c.dbPoolMin | quote }}
MADRASA_DB_POOL_MAX: {{ $c.dbPoolMax | quote }}
MADRASA_DB_ACQUIRE_TIMEOUT: {{ $c.dbAcquireTimeout | quote }}
MADRASA_SMTP_HOST: {{ $c.smtpHost | quote }}
MADRASA_SMTP_PORT: {{ $c.smtpPort | quote }}
MADRASA_MAIL_FROM: {{ $c.mailFrom | quote }}
MADRASA_SMS_BACKEND: {{ $c.smsBackend | quote }}
MADRASA_ALLOWED_PLUGINS: {{ join "," $c.allowedPlugins | quote }}
MADRASA_TRUSTED_PROXIES: {{ join "," $c.trustedProxies | quote }}
MADRASA_LOG_LEVEL: {{ $c.logLevel | quote }}
MADRASA_LOG_JSON: {{ $c.logJson | quote }}
{{- range $key, $value := $c.extra }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* One env entry read from an existing Secret: (dict "env" "MADRASA_…" "ref" .Values.secrets.x). */}}
{{- define "madrasa.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name }}
      key: {{ .ref.key }}
{{- end }}

{{/*
The secrets of the application role, by reference, for web, worker and CronJob pods. The owner role's URL
(secrets.migrationDatabaseUrl) is not among them: only the migration Job receives it.
*/}}
{{- define "madrasa.appSecretEnv" -}}
{{- $s := .Values.secrets }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_SECRET_KEY" "ref" $s.secretKey) }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_DATABASE_URL" "ref" $s.databaseUrl) }}
{{- if $s.replicaUrls.name }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_REPLICA_URLS" "ref" $s.replicaUrls) }}
{{- end }}
{{- if .Values.worker.enabled }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_REDIS_URL" "ref" $s.redisUrl) }}
{{- end }}
{{- if eq .Values.config.storage.backend "s3" }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_S3_ACCESS_KEY" "ref" $s.s3AccessKey) }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_S3_SECRET_KEY" "ref" $s.s3SecretKey) }}
{{- end }}
{{- if $s.metricsToken.name }}
{{ include "madrasa.secretEnv" (dict "env" "MADRASA_METRICS_TOKEN" "ref" $s.metricsToken) }}
{{- end }}
{{- end }}

{{- define "madrasa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "madrasa.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The writable places of a read-only root: /tmp (temporary files, prepared fonts) and the data folder. */}}
{{- define "madrasa.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/madrasa
{{- end }}

{{- define "madrasa.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.volumes.tmpSizeLimit }}
- name: data
{{- if .Values.volumes.data.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.volumes.data.existingClaim }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.volumes.data.sizeLimit }}
{{- end }}
{{- end }}

{{/* Spread a component's pods over zones and nodes: (dict "root" $ "component" "web" "spread" .Values.web.topologySpread). */}}
{{- define "madrasa.topologySpread" -}}
{{- range .spread }}
- maxSkew: {{ .maxSkew }}
  topologyKey: {{ .topologyKey }}
  whenUnsatisfiable: {{ .whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "madrasa.selectorLabels" (dict "root" $.root "component" $.component) | nindent 6 }}
{{- end }}
{{- end }}

{{/* Scheduling and pull settings every pod shares. */}}
{{- define "madrasa.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- include "madrasa.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* What the schema cannot say: relations between values. Rendered by the ConfigMap, so every install checks it. */}}
{{- define "madrasa.validate" -}}
{{- range $component := list "web" "worker" }}
{{- $a := (index $.Values $component).autoscaling }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "%s.autoscaling.minReplicas (%d) must not exceed maxReplicas (%d)" $component (int $a.minReplicas) (int $a.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if gt (int .Values.config.dbPoolMin) (int .Values.config.dbPoolMax) }}
{{- fail "config.dbPoolMin must not exceed config.dbPoolMax" }}
{{- end }}
{{- if eq (int .Values.web.metricsPort) (int .Values.web.port) }}
{{- fail "web.metricsPort must differ from web.port" }}
{{- end }}
{{- $app := .Values.secrets.databaseUrl }}
{{- $owner := .Values.secrets.migrationDatabaseUrl }}
{{- if and (eq $app.name $owner.name) (eq $app.key $owner.key) }}
{{- fail "secrets.databaseUrl and secrets.migrationDatabaseUrl name the same Secret key: the application role must not be the owner" }}
{{- end }}
{{- if and (eq .Values.config.storage.backend "fs") (not .Values.volumes.data.existingClaim) }}
{{- fail "config.storage.backend fs needs volumes.data.existingClaim (a ReadWriteMany claim every pod shares)" }}
{{- end }}
{{- end }}
