{{/* The chart's name, or nameOverride. */}}
{{- define "modelpilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object's name: the release name when it holds the chart's name already. */}}
{{- define "modelpilot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "modelpilot.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object, and the selector of the operator's pods. */}}
{{- define "modelpilot.labels" -}}
app.kubernetes.io/name: {{ include "modelpilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The service account the operator runs as, as an RBAC subject. */}}
{{- define "modelpilot.subject" -}}
- kind: ServiceAccount
  name: {{ include "modelpilot.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* Rules on cluster-scoped objects: kopf discovers the resources it serves and the namespaces
that match its patterns, and watches both for changes. */}}
{{- define "modelpilot.clusterRules" -}}
# kopf discovers resources and namespaces, and watches them for changes.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# Which Prometheus objects load a monitor's rules (their ruleSelector), for its AlertRules condition.
- apiGroups: [monitoring.coreos.com]
  resources: [prometheuses]
  verbs: [list]
{{- end -}}

{{/* Rules in the namespaces the operator watches: the same in a ClusterRole (every namespace)
or in a Role per watched namespace. */}}
{{- define "modelpilot.namespacedRules" -}}
# Its own kinds: read, status, kopf's bookkeeping annotations; canaries created by retraining.
- apiGroups: [modelpilot.dev]
  resources: [modelmonitors, retrainpolicies, canaryreleases]
  verbs: [get, list, watch, patch]
- apiGroups: [modelpilot.dev]
  resources: [modelmonitors/status, retrainpolicies/status, canaryreleases/status]
  verbs: [get, patch]
- apiGroups: [modelpilot.dev]
  resources: [canaryreleases]
  verbs: [create]
# Events on condition transitions.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
# Serving Deployments are read; candidate Deployments and Services are owned (applied
# server-side; Kubernetes collects them with their release); promotion writes one pod-template
# annotation on the stable Deployment (a rolling restart).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch]
# Training runs.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, create]
# Credentials and webhook URLs named in specs.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Traffic weights of the routers (only the weight fields are written).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, patch]
# A monitor's alert rules and dashboards (owned, applied server-side, deleted when turned off).
- apiGroups: [monitoring.coreos.com]
  resources: [prometheusrules]
  verbs: [get, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, patch, delete]
- apiGroups: [grafana.integreatly.org]
  resources: [grafanadashboards]
  verbs: [get, patch, delete]
{{- end -}}
