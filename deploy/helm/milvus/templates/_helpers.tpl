{{/* Names and labels. */}}
{{- define "milvus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "milvus.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "milvus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "milvus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "milvus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "milvus.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
component: {{ .role }}
{{- end -}}

{{/*
The components: values key, role (`milvus run <role>`), port, environment prefix,
whether it is a coordinator. One list, used by the Deployments, the Services and the
checks.
*/}}
{{- define "milvus.components" -}}
- {key: rootCoordinator, role: rootcoord, port: 53100, env: ROOT_COORD, yaml: rootCoord, coord: true}
- {key: dataCoordinator, role: datacoord, port: 13333, env: DATA_COORD, yaml: dataCoord, coord: true}
- {key: queryCoordinator, role: querycoord, port: 19531, env: QUERY_COORD, yaml: queryCoord, coord: true}
- {key: indexCoordinator, role: indexcoord, port: 31000, env: INDEX_COORD, yaml: indexCoord, coord: true}
- {key: proxy, role: proxy, port: 19530, env: PROXY, yaml: proxy, coord: false}
- {key: queryNode, role: querynode, port: 21123, env: QUERY_NODE, yaml: queryNode, coord: false}
- {key: dataNode, role: datanode, port: 21124, env: DATA_NODE, yaml: dataNode, coord: false}
- {key: indexNode, role: indexnode, port: 21121, env: INDEX_NODE, yaml: indexNode, coord: false}
{{- end -}}

{{/* What this chart cannot do fails the rendering with the reason and the fix. */}}
{{- define "milvus.validate" -}}
{{- if not .Values.cluster.enabled -}}
{{- fail "cluster.enabled is false: this chart runs only the cluster form (one Deployment per component); set cluster.enabled: true" -}}
{{- end -}}
{{- range $sub := list "etcd" "minio" "pulsar" "pulsarv3" "kafka" -}}
{{- if (index $.Values $sub).enabled -}}
{{- fail (printf "%s.enabled is true: this chart deploys no %s subchart; set %s.enabled: false and use the external services (externalEtcd, externalS3, externalNats)" $sub $sub $sub) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.externalEtcd.endpoints -}}
{{- fail "externalEtcd.endpoints is empty: list the etcd endpoints (host:port)" -}}
{{- end -}}
{{- range $c := include "milvus.components" . | fromYamlArray -}}
{{- $v := index $.Values $c.key -}}
{{- if and $c.coord $v.enabled (gt (int $v.replicas) 1) (not $v.activeStandby.enabled) -}}
{{- fail (printf "%s.replicas is %d but %s.activeStandby.enabled is false: more than one %s may run only in active-standby mode; set %s.activeStandby.enabled: true, or replicas: 1" $c.key (int $v.replicas) $c.key $c.role $c.key) -}}
{{- end -}}
{{- if lt (int $v.replicas) 0 -}}
{{- fail (printf "%s.replicas is %d: expected 0 or more" $c.key (int $v.replicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
