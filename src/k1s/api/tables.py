"""Server-side Tables (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): what `kubectl get` prints.

kubectl 1.32 has no printers of its own; every column it shows comes from here. Columns, their
descriptions and every cell follow upstream's pkg/printers/internalversion for v1.32, including
its quirks: Restarts is a string with "(5m ago)", Secrets and ConfigMaps count keys as integers,
AllowVolumeExpansion is a JSON boolean.

Like the real API server, cells always include the `priority: 1` (`-o wide`) columns; kubectl
drops them unless asked.

    column_definitions(resource)            the header, as a list of TableColumnDefinition dicts
    row_cells(resource, obj, now)           one row's cells
    build_table(resource, objs, now, ...)   the meta.k8s.io/v1 Table answer
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from .humantime import human_duration, parse_rfc3339
from .quantity import canonical
from .registry import Resource
from .selectors import format_labels

__all__ = ["column_definitions", "row_cells", "row_conditions", "build_table",
           "partial_object_metadata", "pod_status_reason", "pod_ready_and_restarts",
           "access_modes_string", "TABLE_API_VERSION"]

TABLE_API_VERSION = "meta.k8s.io/v1"

_DOCS: dict[str, str] = {
    'ObjectMeta.name': (
        'Name must be unique within a namespace. Is required when creating resources, '
        'although some resources may allow a client to request the generation of an '
        'appropriate name automatically. Name is primarily intended for creation idempotence '
        'and configuration definition. Cannot be updated. More info: '
        'https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names'
    ),
    'ObjectMeta.creationTimestamp': (
        'CreationTimestamp is a timestamp representing the server time when this object was '
        'created. It is not guaranteed to be set in happens-before order across separate '
        'operations. Clients may not set this value. It is represented in RFC3339 form and is'
        ' in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: '
        'https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata'
    ),
    'PodStatus.podIP': (
        'podIP address allocated to the pod. Routable at least within the cluster. Empty if '
        'not yet allocated.'
    ),
    'PodStatus.nominatedNodeName': (
        'nominatedNodeName is set only when this pod preempts other pods on the node, but it '
        'cannot be scheduled right away as preemption victims receive their graceful '
        'termination periods. This field does not guarantee that the pod will be scheduled on'
        ' this node. Scheduler may decide to place the pod elsewhere if other nodes become '
        'available sooner. Scheduler may also decide to give the resources on this node to a '
        'higher priority pod that is created after preemption. As a result, this field may be'
        ' different than PodSpec.nodeName when the pod is scheduled.'
    ),
    'PodSpec.nodeName': (
        'NodeName indicates in which node this pod is scheduled. If empty, this pod is a '
        'candidate for scheduling by the scheduler defined in schedulerName. Once this field '
        'is set, the kubelet for this node becomes responsible for the lifecycle of this pod.'
        ' This field should not be used to express a desire for the pod to be scheduled on a '
        'specific node. '
        'https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename'
    ),
    'PodSpec.readinessGates': (
        'If specified, all readiness gates will be evaluated for pod readiness. A pod is '
        'ready when all its containers are ready AND all conditions specified in the '
        'readiness gates have status equal to "True" More info: '
        'https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates'
    ),
    'ServiceSpec.type': (
        'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are'
        ' ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a '
        'cluster-internal IP address for load-balancing to endpoints. Endpoints are '
        'determined by the selector or if that is not specified, by manual construction of an'
        ' Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual IP is'
        ' allocated and the endpoints are published as a set of endpoints rather than a '
        'virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node which '
        'routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and'
        ' creates an external load-balancer (if supported in the current cloud) which routes '
        'to the same endpoints as the clusterIP. "ExternalName" aliases this service to the '
        'specified externalName. Several other fields do not apply to ExternalName services. '
        'More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types'
    ),
    'ServiceSpec.clusterIP': (
        'clusterIP is the IP address of the service and is usually assigned randomly. If an '
        'address is specified manually, is in-range (as per system configuration), and is not'
        ' in use, it will be allocated to the service; otherwise creation of the service will'
        ' fail. This field may not be changed through updates unless the type field is also '
        'being changed to ExternalName (which requires this field to be blank) or the type '
        'field is being changed from ExternalName (in which case this field may optionally be'
        ' specified, as describe above).  Valid values are "None", empty string (""), or a '
        'valid IP address. Setting this to "None" makes a "headless service" (no virtual IP),'
        ' which is useful when direct endpoint connections are preferred and proxying is not '
        'required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this '
        'field is specified when creating a Service of type ExternalName, creation will fail.'
        ' This field will be wiped when updating a Service to type ExternalName. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies'
    ),
    'ServiceSpec.externalIPs': (
        'externalIPs is a list of IP addresses for which nodes in the cluster will also '
        'accept traffic for this service.  These IPs are not managed by Kubernetes.  The user'
        ' is responsible for ensuring that traffic arrives at a node with this IP.  A common '
        'example is external load-balancers that are not part of the Kubernetes system.'
    ),
    'ServiceSpec.ports': (
        'The list of ports that are exposed by this service. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies'
    ),
    'ServiceSpec.selector': (
        'Route service traffic to pods with label keys and values matching this selector. If '
        'empty or not present, the service is assumed to have an external process managing '
        'its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, '
        'NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/'
    ),
    'Endpoints.subsets': (
        'The set of all endpoints is the union of all subsets. Addresses are placed into '
        'subsets according to the IPs they share. A single address with multiple ports, some '
        'of which are ready and some of which are not (because they come from different '
        'containers) will result in the address being displayed in different subsets for the '
        'different ports. No address will appear in both Addresses and NotReadyAddresses in '
        'the same subset. Sets of addresses and ports that comprise a service.'
    ),
    'NodeSystemInfo.kubeletVersion': (
        'Kubelet Version reported by the node.'
    ),
    'NodeSystemInfo.osImage': (
        'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 '
        '(wheezy)).'
    ),
    'NodeSystemInfo.kernelVersion': (
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
    ),
    'NodeSystemInfo.containerRuntimeVersion': (
        'ContainerRuntime Version reported by the node through runtime remote API (e.g. '
        'containerd://1.4.2).'
    ),
    'NodeStatus.addresses': (
        'List of addresses reachable to the node. Queried from cloud provider, if available. '
        'More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: '
        'This field is declared as mergeable, but the merge key is not sufficiently unique, '
        'which can cause data corruption when it is merged. Callers should instead use a '
        'full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should'
        ' assume that addresses can change during the lifetime of a Node. However, there are '
        "some exceptions where this may not be possible, such as Pods that inherit a Node's "
        'address in its own status or consumers of the downward API (status.hostIP).'
    ),
    'Event.lastTimestamp': (
        'The time at which the most recent occurrence of this event was recorded.'
    ),
    'Event.type': (
        'Type of this event (Normal, Warning), new types could be added in the future'
    ),
    'Event.reason': (
        'This should be a short, machine understandable string that gives the reason for the '
        "transition into the object's current status."
    ),
    'Event.involvedObject': (
        'The object that this event is about.'
    ),
    'Event.source': (
        'The component reporting this event. Should be a short machine understandable string.'
    ),
    'Event.message': (
        'A human-readable description of the status of this operation.'
    ),
    'Event.firstTimestamp': (
        'The time at which the event was first recorded. (Time of server receipt is in '
        'TypeMeta.)'
    ),
    'Event.count': (
        'The number of times this event has occurred.'
    ),
    'ObjectReference.fieldPath': (
        'If referring to a piece of an object instead of an entire object, this string should'
        ' contain a valid JSON/Go field access statement, such as '
        'desiredState.manifest.containers[2]. For example, if the object reference is to a '
        'container within a pod, this would take on a value like: "spec.containers{name}" '
        '(where "name" refers to the name of the container that triggered the event) or if no'
        ' container name is specified "spec.containers[2]" (container with index 2 in this '
        'pod). This syntax is chosen only to have some well-defined way of referencing a part'
        ' of an object.'
    ),
    'Secret.type': (
        'Used to facilitate programmatic handling of secret data. More info: '
        'https://kubernetes.io/docs/concepts/configuration/secret/#secret-types'
    ),
    'Secret.data': (
        'Data contains the secret data. Each key must consist of alphanumeric characters, '
        "'-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, "
        'representing the arbitrary (possibly non-string) data value here. Described in '
        'https://tools.ietf.org/html/rfc4648#section-4'
    ),
    'ServiceAccount.secrets': (
        'Secrets is a list of the secrets in the same namespace that pods running using this '
        'ServiceAccount are allowed to use. Pods are only limited to this list if this '
        'service account has a "kubernetes.io/enforce-mountable-secrets" annotation set to '
        '"true". The "kubernetes.io/enforce-mountable-secrets" annotation is deprecated since'
        ' v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field '
        'should not be used to find auto-generated service account token secrets for use '
        'outside of pods. Instead, tokens can be requested directly using the TokenRequest '
        'API, or service account token secrets can be manually created. More info: '
        'https://kubernetes.io/docs/concepts/configuration/secret'
    ),
    'PersistentVolumeSpec.capacity': (
        "capacity is the description of the persistent volume's resources and capacity. More "
        'info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity'
    ),
    'PersistentVolumeSpec.accessModes': (
        'accessModes contains all ways the volume can be mounted. More info: '
        'https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes'
    ),
    'PersistentVolumeSpec.persistentVolumeReclaimPolicy': (
        'persistentVolumeReclaimPolicy defines what happens to a persistent volume when '
        'released from its claim. Valid options are Retain (default for manually created '
        'PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), '
        'and Recycle (deprecated). Recycle must be supported by the volume plugin underlying '
        'this PersistentVolume. More info: '
        'https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming'
    ),
    'PersistentVolumeSpec.claimRef': (
        'claimRef is part of a bi-directional binding between PersistentVolume and '
        'PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the '
        'authoritative bind between PV and PVC. More info: '
        'https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding'
    ),
    'PersistentVolumeSpec.volumeMode': (
        'volumeMode defines if a volume is intended to be used with a formatted filesystem or'
        ' to remain in raw block state. Value of Filesystem is implied when not included in '
        'spec.'
    ),
    'PersistentVolumeStatus.phase': (
        'phase indicates if a volume is available, bound to a claim, or released by a claim. '
        'More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase'
    ),
    'PersistentVolumeStatus.reason': (
        'reason is a brief CamelCase string that describes any failure and is meant for '
        'machine parsing and tidy display in the CLI.'
    ),
    'PersistentVolumeClaimStatus.phase': (
        'phase represents the current phase of PersistentVolumeClaim.'
    ),
    'PersistentVolumeClaimStatus.capacity': (
        'capacity represents the actual resources of the underlying volume.'
    ),
    'PersistentVolumeClaimStatus.accessModes': (
        'accessModes contains the actual access modes the volume backing the PVC has. More '
        'info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1'
    ),
    'PersistentVolumeClaimSpec.volumeName': (
        'volumeName is the binding reference to the PersistentVolume backing this claim.'
    ),
    'PersistentVolumeClaimSpec.volumeMode': (
        'volumeMode defines what type of volume is required by the claim. Value of Filesystem'
        ' is implied when not included in claim spec.'
    ),
    'ConfigMap.data': (
        'Data contains the configuration data. Each key must consist of alphanumeric '
        "characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the "
        'BinaryData field. The keys stored in Data must not overlap with the keys in the '
        'BinaryData field, this is enforced during validation process.'
    ),
    'LeaseSpec.holderIdentity': (
        'holderIdentity contains the identity of the holder of a current lease. If '
        'Coordinated Leader Election is used, the holder identity must be equal to the '
        'elected LeaseCandidate.metadata.name field.'
    ),
    'StorageClass.provisioner': (
        'provisioner indicates the type of the provisioner.'
    ),
    'StorageClass.reclaimPolicy': (
        'reclaimPolicy controls the reclaimPolicy for dynamically provisioned '
        'PersistentVolumes of this storage class. Defaults to Delete.'
    ),
    'StorageClass.volumeBindingMode': (
        'volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and '
        'bound.  When unset, VolumeBindingImmediate is used. This field is only honored by '
        'servers that enable the VolumeScheduling feature.'
    ),
    'StorageClass.allowVolumeExpansion': (
        'allowVolumeExpansion shows whether the storage class allow volume expand.'
    ),
    'ControllerRevision.revision': (
        'Revision indicates the revision of the state represented by Data.'
    ),
    'EndpointSlice.addressType': (
        'addressType specifies the type of address carried by this EndpointSlice. All '
        'addresses in this slice must be the same type. This field is immutable after '
        'creation. The following address types are currently supported: * IPv4: Represents an'
        ' IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully '
        'Qualified Domain Name.'
    ),
    'EndpointSlice.ports': (
        'ports specifies the list of network ports exposed by each endpoint in this slice. '
        'Each port must have a unique name. When ports is empty, it indicates that there are '
        'no defined ports. When a port is defined with a nil port value, it indicates "all '
        'ports". Each slice may include a maximum of 100 ports.'
    ),
    'EndpointSlice.endpoints': (
        'endpoints is a list of unique endpoints in this slice. Each slice may include a '
        'maximum of 1000 endpoints.'
    ),
}


def _col(name: str, description: str, type_: str = "string", fmt: str = "",
         priority: int = 0) -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": description,
            "priority": priority}


_NAME = _col("Name", _DOCS["ObjectMeta.name"], fmt="name")
_AGE = _col("Age", _DOCS["ObjectMeta.creationTimestamp"])
_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."

_COLUMNS: dict[tuple[str, str], list[dict]] = {
    ("", "pods"): [
        _NAME,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col("Restarts", "The number of times the containers in this pod have been restarted "
                         "and when the last container in this pod has restarted."),
        _AGE,
        _col("IP", _DOCS["PodStatus.podIP"], priority=1),
        _col("Node", _DOCS["PodSpec.nodeName"], priority=1),
        _col("Nominated Node", _DOCS["PodStatus.nominatedNodeName"], priority=1),
        _col("Readiness Gates", _DOCS["PodSpec.readinessGates"], priority=1),
    ],
    ("", "namespaces"): [_NAME, _col("Status", "The status of the namespace"), _AGE],
    ("", "services"): [
        _NAME,
        _col("Type", _DOCS["ServiceSpec.type"]),
        _col("Cluster-IP", _DOCS["ServiceSpec.clusterIP"]),
        _col("External-IP", _DOCS["ServiceSpec.externalIPs"]),
        _col("Port(s)", _DOCS["ServiceSpec.ports"]),
        _AGE,
        _col("Selector", _DOCS["ServiceSpec.selector"], priority=1),
    ],
    ("", "endpoints"): [_NAME, _col("Endpoints", _DOCS["Endpoints.subsets"]), _AGE],
    ("", "events"): [
        _col("Last Seen", _DOCS["Event.lastTimestamp"]),
        _col("Type", _DOCS["Event.type"]),
        _col("Reason", _DOCS["Event.reason"]),
        _col("Object", _DOCS["Event.involvedObject"]),
        _col("Subobject", _DOCS["ObjectReference.fieldPath"], priority=1),
        _col("Source", _DOCS["Event.source"], priority=1),
        _col("Message", _DOCS["Event.message"]),
        _col("First Seen", _DOCS["Event.firstTimestamp"], priority=1),
        _col("Count", _DOCS["Event.count"], priority=1),
        _col("Name", _DOCS["ObjectMeta.name"], fmt="name", priority=1),
    ],
    ("", "nodes"): [
        _NAME,
        _col("Status", "The status of the node"),
        _col("Roles", "The roles of the node"),
        _AGE,
        _col("Version", _DOCS["NodeSystemInfo.kubeletVersion"]),
        _col("Internal-IP", _DOCS["NodeStatus.addresses"], priority=1),
        _col("External-IP", _DOCS["NodeStatus.addresses"], priority=1),
        _col("OS-Image", _DOCS["NodeSystemInfo.osImage"], priority=1),
        _col("Kernel-Version", _DOCS["NodeSystemInfo.kernelVersion"], priority=1),
        _col("Container-Runtime", _DOCS["NodeSystemInfo.containerRuntimeVersion"], priority=1),
    ],
    ("", "persistentvolumes"): [
        _NAME,
        _col("Capacity", _DOCS["PersistentVolumeSpec.capacity"]),
        _col("Access Modes", _DOCS["PersistentVolumeSpec.accessModes"]),
        _col("Reclaim Policy", _DOCS["PersistentVolumeSpec.persistentVolumeReclaimPolicy"]),
        _col("Status", _DOCS["PersistentVolumeStatus.phase"]),
        _col("Claim", _DOCS["PersistentVolumeSpec.claimRef"]),
        _col("StorageClass", "StorageClass of the pv"),
        _col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        _col("Reason", _DOCS["PersistentVolumeStatus.reason"]),
        _AGE,
        _col("VolumeMode", _DOCS["PersistentVolumeSpec.volumeMode"], priority=1),
    ],
    ("", "persistentvolumeclaims"): [
        _NAME,
        _col("Status", _DOCS["PersistentVolumeClaimStatus.phase"]),
        _col("Volume", _DOCS["PersistentVolumeClaimSpec.volumeName"]),
        _col("Capacity", _DOCS["PersistentVolumeClaimStatus.capacity"]),
        _col("Access Modes", _DOCS["PersistentVolumeClaimStatus.accessModes"]),
        _col("StorageClass", "StorageClass of the pvc"),
        _col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        _AGE,
        _col("VolumeMode", _DOCS["PersistentVolumeClaimSpec.volumeMode"], priority=1),
    ],
    ("", "configmaps"): [_NAME, _col("Data", _DOCS["ConfigMap.data"]), _AGE],
    ("", "secrets"): [_NAME, _col("Type", _DOCS["Secret.type"]),
                      _col("Data", _DOCS["Secret.data"]), _AGE],
    ("", "serviceaccounts"): [_NAME, _col("Secrets", _DOCS["ServiceAccount.secrets"]), _AGE],
    ("apps", "statefulsets"): [
        _NAME,
        _col("Ready", "Number of the pod with ready state"),
        _AGE,
        _col("Containers", _CONTAINERS, priority=1),
        _col("Images", _IMAGES, priority=1),
    ],
    ("apps", "controllerrevisions"): [
        _NAME,
        _col("Controller", "Controller of the object"),
        _col("Revision", _DOCS["ControllerRevision.revision"]),
        _AGE,
    ],
    ("storage.k8s.io", "storageclasses"): [
        _NAME,
        _col("Provisioner", _DOCS["StorageClass.provisioner"]),
        _col("ReclaimPolicy", _DOCS["StorageClass.reclaimPolicy"]),
        _col("VolumeBindingMode", _DOCS["StorageClass.volumeBindingMode"]),
        _col("AllowVolumeExpansion", _DOCS["StorageClass.allowVolumeExpansion"]),
        _AGE,
    ],
    ("discovery.k8s.io", "endpointslices"): [
        _NAME,
        _col("AddressType", _DOCS["EndpointSlice.addressType"]),
        _col("Ports", _DOCS["EndpointSlice.ports"]),
        _col("Endpoints", _DOCS["EndpointSlice.endpoints"]),
        _AGE,
    ],
    ("coordination.k8s.io", "leases"): [
        _NAME, _col("Holder", _DOCS["LeaseSpec.holderIdentity"]), _AGE],
}
# events.k8s.io/v1 Events are printed by the same printer as core events.
_COLUMNS[("events.k8s.io", "events")] = _COLUMNS[("", "events")]

# Kinds without a printer get upstream's default convertor: name and creation time.
_DEFAULT_COLUMNS = [_NAME, _col("Created At", _DOCS["ObjectMeta.creationTimestamp"],
                                type_="date")]


def _key(resource: Resource) -> tuple[str, str]:
    return (resource.group, resource.plural)


def column_definitions(resource: Resource) -> list[dict]:
    """Column definitions for a kind (copies, so callers may change them)."""
    return [dict(c) for c in _COLUMNS.get(_key(resource), _DEFAULT_COLUMNS)]


# --- small helpers ------------------------------------------------------------------------------

def _m(obj: Any) -> Mapping:
    return obj if isinstance(obj, Mapping) else {}


def _l(obj: Any) -> list:
    return obj if isinstance(obj, list) else []


def _since(ts: Any, now: float) -> str:
    """translateTimestampSince: `<unknown>` for an unset time."""
    if not ts or not isinstance(ts, str):
        return "<unknown>"
    try:
        return human_duration(now - parse_rfc3339(ts))
    except ValueError:
        return "<unknown>"


def _ts(ts: Any) -> float | None:
    if not ts or not isinstance(ts, str):
        return None
    try:
        return parse_rfc3339(ts)
    except ValueError:
        return None


def _age(obj: Mapping, now: float) -> str:
    return _since(_m(obj.get("metadata")).get("creationTimestamp"), now)


def _name(obj: Mapping) -> str:
    return str(_m(obj.get("metadata")).get("name") or "")


def _qty(v: Any) -> str:
    """Quantity.String() of a stored value; an absent quantity prints as "0"."""
    if v is None:
        return "0"
    try:
        return canonical(v)
    except ValueError:
        return str(v)


def _containers(template_spec: Mapping) -> tuple[str, str]:
    cs = _l(template_spec.get("containers"))
    return (",".join(str(_m(c).get("name") or "") for c in cs),
            ",".join(str(_m(c).get("image") or "") for c in cs))


def access_modes_string(modes: Iterable[str] | None) -> str:
    """`RWO,ROX,RWX,RWOP` in that fixed order, duplicates dropped (upstream's helper)."""
    have = set(modes or ())
    order = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
             ("ReadWriteOncePod", "RWOP"))
    return ",".join(short for mode, short in order if mode in have)


_BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _storage_class(obj: Mapping) -> str:
    # The beta annotation still wins over the field, as upstream's helpers read it.
    ann = _m(_m(obj.get("metadata")).get("annotations"))
    if _BETA_CLASS_ANNOTATION in ann:
        return str(ann[_BETA_CLASS_ANNOTATION])
    return str(_m(obj.get("spec")).get("storageClassName") or "")


# --- pods ---------------------------------------------------------------------------------------

def _state(status: Mapping, which: str) -> Mapping | None:
    v = _m(status.get("state")).get(which)
    return v if isinstance(v, Mapping) else None


def _last_terminated_at(status: Mapping) -> float | None:
    term = _m(status.get("lastState")).get("terminated")
    if isinstance(term, Mapping):
        return _ts(term.get("finishedAt"))
    return None


def _is_restartable_init(container: Mapping | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _has_condition(conditions: list, ctype: str) -> bool | None:
    """The first condition of a type: True/False; None when absent."""
    for c in conditions:
        if _m(c).get("type") == ctype:
            return _m(c).get("status") == "True"
    return None


def _pod_summary(pod: Mapping) -> tuple[int, int, str, int, float | None]:
    """(ready, total, status reason, restarts, last restart time) as upstream's printPod."""
    spec, status = _m(pod.get("spec")), _m(pod.get("status"))
    meta = _m(pod.get("metadata"))
    conditions = _l(status.get("conditions"))
    init_specs = {str(_m(c).get("name")): _m(c) for c in _l(spec.get("initContainers"))}
    total = len(_l(spec.get("containers"))) + sum(
        1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None

    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or "") or phase
    for c in conditions:
        if _m(c).get("type") == "PodScheduled" and _m(c).get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    n_init = len(_l(spec.get("initContainers")))
    initializing = False
    for i, cs in enumerate(_l(status.get("initContainerStatuses"))):
        cs = _m(cs)
        restarts += int(cs.get("restartCount") or 0)
        t = _last_terminated_at(cs)
        if t is not None and (last_restart is None or t > last_restart):
            last_restart = t
        restartable = _is_restartable_init(init_specs.get(str(cs.get("name"))))
        if restartable:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            if t is not None and (last_sidecar_restart is None or t > last_sidecar_restart):
                last_sidecar_restart = t
        term, wait = _state(cs, "terminated"), _state(cs, "waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if restartable and cs.get("started") is True:
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if int(term.get("signal") or 0) != 0:
                    reason = f"Init:Signal:{int(term.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + str(term["reason"])
        elif wait is not None and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + str(wait["reason"])
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized") is True:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(_l(status.get("containerStatuses"))):
            cs = _m(cs)
            restarts += int(cs.get("restartCount") or 0)
            t = _last_terminated_at(cs)
            if t is not None and (last_restart is None or t > last_restart):
                last_restart = t
            term, wait = _state(cs, "terminated"), _state(cs, "waiting")
            if wait is not None and wait.get("reason"):
                reason = str(wait["reason"])
            elif term is not None and term.get("reason"):
                reason = str(term["reason"])
            elif term is not None:
                if int(term.get("signal") or 0) != 0:
                    reason = f"Signal:{int(term.get('signal'))}"
                else:
                    reason = f"ExitCode:{int(term.get('exitCode') or 0)}"
            elif cs.get("ready") and _state(cs, "running") is not None:
                has_running = True
                ready += 1
        # A pod whose finished containers say Completed but one still runs is not done.
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(conditions, "Ready") is True else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def pod_status_reason(pod: Mapping) -> str:
    """The STATUS column of `kubectl get pods`."""
    return _pod_summary(pod)[2]


def pod_ready_and_restarts(pod: Mapping, now: float) -> tuple[str, str]:
    """The READY (`1/2`) and RESTARTS (`3 (5m ago)`) columns."""
    ready, total, _, restarts, last = _pod_summary(pod)
    text = str(restarts)
    if restarts and last is not None:
        text = f"{restarts} ({human_duration(now - last)} ago)"
    return f"{ready}/{total}", text


def _pod_cells(pod: Mapping, now: float) -> list:
    ready, total, reason, restarts, last = _pod_summary(pod)
    restarts_text = str(restarts)
    if restarts and last is not None:
        restarts_text = f"{restarts} ({human_duration(now - last)} ago)"
    spec, status = _m(pod.get("spec")), _m(pod.get("status"))
    ips = _l(status.get("podIPs"))
    pod_ip = str(_m(ips[0]).get("ip") or "") if ips else ""
    gates = _l(spec.get("readinessGates"))
    gates_text = "<none>"
    if gates:
        conds = _l(status.get("conditions"))
        true = sum(1 for g in gates
                   if _has_condition(conds, str(_m(g).get("conditionType"))) is True)
        gates_text = f"{true}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now),
            pod_ip or "<none>", str(spec.get("nodeName") or "") or "<none>",
            str(status.get("nominatedNodeName") or "") or "<none>", gates_text]


def row_conditions(resource: Resource, obj: Mapping) -> list[dict] | None:
    """Row conditions: upstream marks finished pods Completed (kubectl may hide them)."""
    if _key(resource) != ("", "pods"):
        return None
    phase = _m(obj.get("status")).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed",
                 "message": "The pod failed."}]
    return None


# --- the other kinds ----------------------------------------------------------------------------

def _namespace_cells(ns: Mapping, now: float) -> list:
    return [_name(ns), str(_m(ns.get("status")).get("phase") or ""), _age(ns, now)]


def _lb_ingress(svc: Mapping) -> list[str]:
    out = set()
    for ing in _l(_m(_m(svc.get("status")).get("loadBalancer")).get("ingress")):
        ing = _m(ing)
        if ing.get("ip"):
            out.add(str(ing["ip"]))
        elif ing.get("hostname"):
            out.add(str(ing["hostname"]))
    return sorted(out)


def _service_external_ip(svc: Mapping) -> str:
    spec = _m(svc.get("spec"))
    ext = [str(x) for x in _l(spec.get("externalIPs"))]
    stype = spec.get("type")
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if stype == "LoadBalancer":
        # The server renders with wide=true, so the list is never clipped.
        lb = _lb_ingress(svc)
        if ext:
            return ",".join(lb + ext)
        return ",".join(lb) if lb else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_cells(svc: Mapping, now: float) -> list:
    spec = _m(svc.get("spec"))
    ips = _l(spec.get("clusterIPs"))
    # Upstream reads clusterIPs[0]; defaulting always sets it, clusterIP covers older objects.
    internal = str(ips[0]) if ips else str(spec.get("clusterIP") or "") or "<none>"
    ports = []
    for p in _l(spec.get("ports")):
        p = _m(p)
        proto = p.get("protocol") or ""
        if int(p.get("nodePort") or 0) > 0:
            ports.append(f"{p.get('port', 0)}:{p['nodePort']}/{proto}")
        else:
            ports.append(f"{p.get('port', 0)}/{proto}")
    return [_name(svc), str(spec.get("type") or ""), internal, _service_external_ip(svc),
            ",".join(ports) or "<none>", _age(svc, now), format_labels(spec.get("selector"))]


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _format_endpoints(ep: Mapping) -> str:
    subsets = _l(ep.get("subsets"))
    if not subsets:
        return "<none>"
    out: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        ss = _m(ss)
        addrs = _l(ss.get("addresses"))
        ports = _l(ss.get("ports"))
        if not ports:
            # headless services may have no ports
            count += len(addrs)
            for a in addrs:
                if len(out) == limit:
                    more = True
                    break
                out.append(str(_m(a).get("ip") or ""))
            continue
        for p in ports:
            count += len(addrs)
            for a in addrs:
                if len(out) == limit:
                    more = True
                    break
                out.append(_join_host_port(str(_m(a).get("ip") or ""), _m(p).get("port", 0)))
    text = ",".join(out)
    return f"{text} + {count - limit} more..." if more else text


def _endpoints_cells(ep: Mapping, now: float) -> list:
    return [_name(ep), _format_endpoints(ep), _age(ep, now)]


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def _endpointslice_cells(es: Mapping, now: float) -> list:
    limit = 3
    ports: list[str] = []
    pmore, pcount = False, 0
    for p in _l(es.get("ports")):
        p = _m(p)
        if len(ports) < limit:
            if p.get("port") is not None:
                ports.append(str(p["port"]))
            elif p.get("name") is not None:
                ports.append(str(p["name"]))
            else:
                ports.append("*")
        elif len(ports) == limit:
            pmore = True
        pcount += 1
    addrs: list[str] = []
    amore, acount = False, 0
    for e in _l(es.get("endpoints")):
        for a in _l(_m(e).get("addresses")):
            if len(addrs) < limit:
                addrs.append(str(a))
            elif len(addrs) == limit:
                amore = True
            acount += 1
    return [_name(es), str(es.get("addressType") or ""),
            _list_with_more(ports, pmore, pcount, limit),
            _list_with_more(addrs, amore, acount, limit), _age(es, now)]


def _event_as_core(ev: Mapping) -> Mapping:
    """An events.k8s.io/v1 Event read through the core schema the printer uses."""
    if "involvedObject" in ev or not ("regarding" in ev or "note" in ev
                                      or "deprecatedSource" in ev):
        return ev
    return {
        "metadata": ev.get("metadata"),
        "involvedObject": ev.get("regarding") or {},
        "reason": ev.get("reason"), "message": ev.get("note"), "type": ev.get("type"),
        "source": ev.get("deprecatedSource") or {},
        "firstTimestamp": ev.get("deprecatedFirstTimestamp"),
        "lastTimestamp": ev.get("deprecatedLastTimestamp"),
        "count": ev.get("deprecatedCount"), "series": ev.get("series"),
        "eventTime": ev.get("eventTime"),
        "reportingComponent": ev.get("reportingController"),
        "reportingInstance": ev.get("reportingInstance"),
    }


def _event_cells(ev: Mapping, now: float) -> list:
    ev = _event_as_core(ev)
    first = _since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else \
        _since(ev.get("eventTime"), now)
    last = _since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if isinstance(series, Mapping):
        last = _since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1  # singleton events carry no count in the new API
    ref = _m(ev.get("involvedObject"))
    kind = str(ref.get("kind") or "").lower()
    target = f"{kind}/{ref['name']}" if ref.get("name") else kind
    src = _m(ev.get("source"))
    component = str(src.get("component") or "") or str(ev.get("reportingComponent") or "")
    instance = str(src.get("host") or "") or str(ev.get("reportingInstance") or "")
    source = f"{component}, {instance}" if instance else component
    return [last, str(ev.get("type") or ""), str(ev.get("reason") or ""), target,
            str(ref.get("fieldPath") or ""), source, str(ev.get("message") or "").strip(),
            first, count, _name(ev)]


def _node_cells(node: Mapping, now: float) -> list:
    spec, status = _m(node.get("spec")), _m(node.get("status"))
    states = []
    ready = None
    for c in _l(status.get("conditions")):
        if _m(c).get("type") == "Ready":
            ready = _m(c)   # the last one of a type wins, as a map keyed by type would
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for k, v in _m(_m(node.get("metadata")).get("labels")).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(str(v))
    info = _m(status.get("nodeInfo"))

    def addr(kind: str) -> str:
        for a in _l(status.get("addresses")):
            if _m(a).get("type") == kind:
                return str(_m(a).get("address") or "")
        return "<none>"

    return [_name(node), ",".join(states), ",".join(sorted(roles)) or "<none>", _age(node, now),
            str(info.get("kubeletVersion") or ""), addr("InternalIP"), addr("ExternalIP"),
            str(info.get("osImage") or "") or "<unknown>",
            str(info.get("kernelVersion") or "") or "<unknown>",
            str(info.get("containerRuntimeVersion") or "") or "<unknown>"]


def _pv_cells(pv: Mapping, now: float) -> list:
    spec, status = _m(pv.get("spec")), _m(pv.get("status"))
    ref = spec.get("claimRef")
    claim = f"{_m(ref).get('namespace') or ''}/{_m(ref).get('name') or ''}" \
        if isinstance(ref, Mapping) else ""
    phase = str(status.get("phase") or "")
    if _m(pv.get("metadata")).get("deletionTimestamp"):
        phase = "Terminating"
    vac = spec.get("volumeAttributesClassName")
    return [_name(pv), _qty(_m(spec.get("capacity")).get("storage")),
            access_modes_string(spec.get("accessModes")),
            str(spec.get("persistentVolumeReclaimPolicy") or ""), phase, claim,
            _storage_class(pv), "<unset>" if vac is None else str(vac),
            str(status.get("reason") or ""), _age(pv, now),
            "<unset>" if spec.get("volumeMode") is None else str(spec["volumeMode"])]


def _pvc_cells(pvc: Mapping, now: float) -> list:
    spec, status = _m(pvc.get("spec")), _m(pvc.get("status"))
    phase = str(status.get("phase") or "")
    if _m(pvc.get("metadata")).get("deletionTimestamp"):
        phase = "Terminating"
    capacity = modes = ""
    volume = str(spec.get("volumeName") or "")
    if volume:
        # Capacity and modes are shown only once the claim names its volume.
        modes = access_modes_string(status.get("accessModes"))
        capacity = _qty(_m(status.get("capacity")).get("storage"))
    vac = spec.get("volumeAttributesClassName")
    return [_name(pvc), phase, volume, capacity, modes, _storage_class(pvc),
            "<unset>" if vac is None else str(vac), _age(pvc, now),
            "<unset>" if spec.get("volumeMode") is None else str(spec["volumeMode"])]


def _configmap_cells(cm: Mapping, now: float) -> list:
    return [_name(cm), len(_m(cm.get("data"))) + len(_m(cm.get("binaryData"))), _age(cm, now)]


def _secret_cells(s: Mapping, now: float) -> list:
    # Counted as stored: stringData was folded into data on write.
    return [_name(s), str(s.get("type") or ""), len(_m(s.get("data"))), _age(s, now)]


def _serviceaccount_cells(sa: Mapping, now: float) -> list:
    return [_name(sa), len(_l(sa.get("secrets"))), _age(sa, now)]


def _statefulset_cells(sts: Mapping, now: float) -> list:
    spec, status = _m(sts.get("spec")), _m(sts.get("status"))
    names, images = _containers(_m(_m(spec.get("template")).get("spec")))
    return [_name(sts), f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
            _age(sts, now), names, images]


def _controller_of(obj: Mapping) -> Mapping | None:
    for ref in _l(_m(obj.get("metadata")).get("ownerReferences")):
        if _m(ref).get("controller") is True:
            return _m(ref)
    return None


def _controllerrevision_cells(cr: Mapping, now: float) -> list:
    ref = _controller_of(cr)
    controller = "<none>"
    if ref is not None:
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        kind = str(ref.get("kind") or "")
        group_kind = f"{kind}.{group}" if group else kind
        name = str(ref.get("name") or "")
        controller = f"{group_kind.lower()}/{name}" if group_kind else name
    return [_name(cr), controller, int(cr.get("revision") or 0), _age(cr, now)]


def _is_default_class(obj: Mapping) -> bool:
    ann = _m(_m(obj.get("metadata")).get("annotations"))
    return (ann.get("storageclass.kubernetes.io/is-default-class") == "true"
            or ann.get("storageclass.beta.kubernetes.io/is-default-class") == "true")


def _storageclass_cells(sc: Mapping, now: float) -> list:
    name = _name(sc) + (" (default)" if _is_default_class(sc) else "")
    return [name, str(sc.get("provisioner") or ""), str(sc.get("reclaimPolicy") or "Delete"),
            str(sc.get("volumeBindingMode") or "Immediate"),
            bool(sc.get("allowVolumeExpansion") or False), _age(sc, now)]


def _lease_cells(lease: Mapping, now: float) -> list:
    return [_name(lease), str(_m(lease.get("spec")).get("holderIdentity") or ""),
            _age(lease, now)]


def _default_cells(obj: Mapping, now: float) -> list:
    return [_name(obj), _m(obj.get("metadata")).get("creationTimestamp")]


_PRINTERS: dict[tuple[str, str], Callable[[Mapping, float], list]] = {
    ("", "pods"): _pod_cells,
    ("", "namespaces"): _namespace_cells,
    ("", "services"): _service_cells,
    ("", "endpoints"): _endpoints_cells,
    ("", "events"): _event_cells,
    ("events.k8s.io", "events"): _event_cells,
    ("", "nodes"): _node_cells,
    ("", "persistentvolumes"): _pv_cells,
    ("", "persistentvolumeclaims"): _pvc_cells,
    ("", "configmaps"): _configmap_cells,
    ("", "secrets"): _secret_cells,
    ("", "serviceaccounts"): _serviceaccount_cells,
    ("apps", "statefulsets"): _statefulset_cells,
    ("apps", "controllerrevisions"): _controllerrevision_cells,
    ("storage.k8s.io", "storageclasses"): _storageclass_cells,
    ("discovery.k8s.io", "endpointslices"): _endpointslice_cells,
    ("coordination.k8s.io", "leases"): _lease_cells,
}


def row_cells(resource: Resource, obj: Mapping, now: float) -> list:
    """The cells of one row, wide columns included, for `now` (seconds since the epoch)."""
    return _PRINTERS.get(_key(resource), _default_cells)(obj, now)


# --- the Table ----------------------------------------------------------------------------------

def partial_object_metadata(obj: Mapping) -> dict:
    """The row object kubectl gets by default: the full metadata and nothing else."""
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
            "metadata": obj.get("metadata") or {}}


def build_table(resource: Resource, objs: Iterable[Mapping], now: float,
                include_object: str = "Metadata", resource_version: str = "",
                continue_token: str | None = None, with_columns: bool = True,
                remaining_item_count: int | None = None) -> dict:
    """A meta.k8s.io/v1 Table of `objs`.

    include_object: "Metadata" (default; rows carry PartialObjectMetadata), "Object" (the full
    object: `kubectl get --sort-by` needs it) or "None" (no row object).
    with_columns=False leaves columnDefinitions null, as upstream does for every watch event
    after the first.
    """
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": row_cells(resource, obj, now)}
        conds = row_conditions(resource, obj)
        if conds:
            row["conditions"] = conds
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_object_metadata(obj)
        rows.append(row)
    meta: dict[str, Any] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining_item_count is not None:
        meta["remainingItemCount"] = remaining_item_count
    return {"kind": "Table", "apiVersion": TABLE_API_VERSION, "metadata": meta,
            "columnDefinitions": column_definitions(resource) if with_columns else None,
            "rows": rows}
