"""Volume sources: the per-type checks shared by pod volumes and PersistentVolume sources.

Upstream validates each source type with its own small function (server and path required
for nfs, monitors and image for rbd, ...) and reports a second source in the same volume as
`Forbidden: may not specify more than 1 volume type`, no source at all as `Required value:
must specify a volume type`. Field-path quirks are upstream's (gcePersistentDisk errors are
reported under `persistentDisk`, cephFS under `cephfs`).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Callable

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation.common import (Errs, child, d, dns1123_label, dns1123_subdomain, index,
                                       key, lst, num, optional_one_of, s)

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
MORE_THAN_ONE = "may not specify more than 1 volume type"

HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket")

_IQN = re.compile(r"iqn\.\d{4}-\d{2}\.([A-Za-z0-9\-.]+)(:[^,;*&$|\s]+)$")
_EUI = re.compile(r"^eui.[A-Za-z0-9]{16}$")
_NAA = re.compile(r"^naa.[A-Za-z0-9]{32}$")


def _req(src: dict, field: str, path: str, detail: str = "") -> Errs:
    return [] if s(src.get(field)) else [E.required(child(path, field), detail)]


def path_no_backsteps(target: str, path: str) -> Errs:
    if ".." in target.replace("\\", "/").split("/"):
        return [E.invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, path: str) -> Errs:
    errs: Errs = []
    if target.startswith("/"):
        errs.append(E.invalid(path, target, "must be a relative path"))
    return errs + path_no_backsteps(target, path)


def local_non_reserved_path(target: str, path: str) -> Errs:
    errs = local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(E.invalid(path, target, "must not start with '..'"))
    return errs


def _mode(v: Any, path: str) -> Errs:
    if v is None:
        return []
    m = num(v)
    return [E.invalid(path, m, FILE_MODE_MSG)] if m < 0 or m > 0o777 else []


def key_to_path(kp: Any, path: str) -> Errs:
    kp = d(kp)
    errs: Errs = []
    if not s(kp.get("key")):
        errs.append(E.required(child(path, "key")))
    if not s(kp.get("path")):
        errs.append(E.required(child(path, "path")))
    errs += local_non_reserved_path(s(kp.get("path")), child(path, "path"))
    errs += _mode(kp.get("mode"), child(path, "mode"))
    return errs


def host_path(src: dict, path: str) -> Errs:
    p = s(src.get("path"))
    if not p:
        return [E.required(child(path, "path"))]
    errs = path_no_backsteps(p, child(path, "path"))
    t = src.get("type")
    errs += optional_one_of(t, HOST_PATH_TYPES, child(path, "type"))
    return errs


def nfs(src: dict, path: str) -> Errs:
    errs = _req(src, "server", path) + _req(src, "path", path)
    if not s(src.get("path")).startswith("/"):
        errs.append(E.invalid(child(path, "path"), s(src.get("path")), "must be an absolute path"))
    return errs


def rbd(src: dict, path: str) -> Errs:
    errs: Errs = []
    if not lst(src.get("monitors")):
        errs.append(E.required(child(path, "monitors")))
    return errs + _req(src, "image", path)


def cephfs(src: dict, path: str) -> Errs:
    return [] if lst(src.get("monitors")) else [E.required(child(path, "monitors"))]


def _iqn_format(value: str, path: str, detail_first: str) -> Errs:
    if not value.startswith(("iqn", "eui", "naa")):
        return [E.invalid(path, value, detail_first)]
    if value.startswith("iqn") and not _IQN.search(value):
        return [E.invalid(path, value, "must be valid format")]
    if value.startswith("eui") and not _EUI.search(value):
        return [E.invalid(path, value, "must be valid format")]
    if value.startswith("naa") and not _NAA.search(value):
        return [E.invalid(path, value, "must be valid format")]
    return []


def iscsi(src: dict, path: str, pv_name: str | None = None) -> Errs:
    errs = _req(src, "targetPortal", path)
    if pv_name is not None and src.get("initiatorName") is not None and \
            len(pv_name + ":" + s(src.get("targetPortal"))) > 64:
        errs.append(E.invalid(child(path, "targetportal"), s(src.get("targetPortal")),
                              "Total length of <volume name>:<iscsi.targetPortal> must be under "
                              "64 characters if iscsi.initiatorName is specified."))
    iqn = s(src.get("iqn"))
    if not iqn:
        errs.append(E.required(child(path, "iqn")))
    else:
        first = "must be valid format" if pv_name is not None else \
            "must be valid format starting with iqn, eui, or naa"
        errs += _iqn_format(iqn, child(path, "iqn"), first)
    lun = num(src.get("lun"))
    if lun < 0 or lun > 255:
        errs.append(E.invalid(child(path, "lun"), lun, F.inclusive_range_error(0, 255)))
    if (src.get("chapAuthDiscovery") or src.get("chapAuthSession")) and \
            src.get("secretRef") is None:
        errs.append(E.required(child(path, "secretRef")))
    if pv_name is not None and src.get("secretRef") is not None and \
            not s(d(src.get("secretRef")).get("name")):
        errs.append(E.required(child(path, "secretRef", "name")))
    if src.get("initiatorName") is not None:
        init = s(src.get("initiatorName"))
        first = "must be valid format" if pv_name is not None else \
            "must be valid format starting with iqn, eui, or naa"
        errs += _iqn_format(init, child(path, "initiatorname"), first)
    return errs


def fc(src: dict, path: str) -> Errs:
    errs: Errs = []
    wwns, wwids = lst(src.get("targetWWNs")), lst(src.get("wwids"))
    if not wwns and not wwids:
        errs.append(E.required(child(path, "targetWWNs"),
                               "must specify either targetWWNs or wwids, but not both"))
    if wwns and wwids:
        errs.append(E.invalid(child(path, "targetWWNs"), wwns,
                              "targetWWNs and wwids can not be specified simultaneously"))
    if wwns:
        if src.get("lun") is None:
            errs.append(E.required(child(path, "lun"), "lun is required if targetWWNs is specified"))
        elif not 0 <= num(src.get("lun")) <= 255:
            errs.append(E.invalid(child(path, "lun"), num(src.get("lun")),
                                  F.inclusive_range_error(0, 255)))
    return errs


def _partition(src: dict, path: str) -> Errs:
    # Upstream accepts 0 (the whole disk) yet words the range as 1..255.
    part = num(src.get("partition"))
    if part < 0 or part > 255:
        return [E.invalid(child(path, "partition"), part, F.inclusive_range_error(1, 255))]
    return []


def gce_pd(src: dict, path: str) -> Errs:
    return _req(src, "pdName", path) + _partition(src, path)


def aws_ebs(src: dict, path: str) -> Errs:
    return _req(src, "volumeID", path) + _partition(src, path)


def glusterfs(src: dict, path: str, pv: bool = False) -> Errs:
    errs = _req(src, "endpoints", path) + _req(src, "path", path)
    if pv and src.get("endpointsNamespace") is not None:
        ns = s(src.get("endpointsNamespace"))
        p = child(path, "endpointsNamespace")
        if not ns:
            errs.append(E.invalid(p, ns, "if the endpointnamespace is set, it must be a valid "
                                  "namespace name"))
        else:
            errs += [E.invalid(p, ns, m) for m in F.name_is_dns_label(ns)]
    return errs


def flocker(src: dict, path: str) -> Errs:
    errs: Errs = []
    name, uuid = s(src.get("datasetName")), s(src.get("datasetUUID"))
    if not name and not uuid:
        errs.append(E.required(path, "one of datasetName and datasetUUID is required"))
    if name and uuid:
        errs.append(E.invalid(path, "resource",
                              "datasetName and datasetUUID can not be specified simultaneously"))
    if "/" in name:
        errs.append(E.invalid(child(path, "datasetName"), name, "must not contain '/'"))
    return errs


def _optional_secret_ref(src: dict, path: str, pv: bool) -> Errs:
    # An optional secretRef names its secret; on a PV (cluster-scoped) also its namespace.
    ref = src.get("secretRef")
    if ref is None:
        return []
    ref, errs = d(ref), []
    if not s(ref.get("name")):
        errs.append(E.required(child(path, "secretRef", "name")))
    if pv and not s(ref.get("namespace")):
        errs.append(E.required(child(path, "secretRef", "namespace")))
    return errs


def cinder(src: dict, path: str, pv: bool = False) -> Errs:
    return _req(src, "volumeID", path) + _optional_secret_ref(src, path, pv)


def flex(src: dict, path: str) -> Errs:
    errs = _req(src, "driver", path)
    for k in d(src.get("options")):
        ns = k.split("/", 1)[0] if "/" in k else k
        norm = "." + ns.lower()
        if norm.endswith(".kubernetes.io") or norm.endswith(".k8s.io"):
            errs.append(E.invalid(key(child(path, "options"), k), k,
                                  "kubernetes.io and k8s.io namespaces are reserved"))
    return errs


def azure_file(src: dict, path: str, pv: bool = False) -> Errs:
    errs = _req(src, "secretName", path) + _req(src, "shareName", path)
    if pv and src.get("secretNamespace") is not None and not s(src.get("secretNamespace")):
        errs.append(E.required(child(path, "secretNamespace")))
    return errs


def azure_disk(src: dict, path: str) -> Errs:
    errs = _req(src, "diskName", path) + _req(src, "diskURI", path)
    caching = src.get("cachingMode")
    errs += optional_one_of(caching, ("None", "ReadOnly", "ReadWrite"), child(path, "cachingMode"))
    kind = src.get("kind")
    errs += optional_one_of(kind, ("Dedicated", "Managed", "Shared"), child(path, "kind"))
    uri = s(src.get("diskURI"))
    if kind == "Managed" and not uri.startswith("/subscriptions/"):
        errs.append(E.unsupported(child(path, "diskURI"), uri, [
            "/subscriptions/{sub-id}/resourcegroups/{group-name}/providers/microsoft.compute/"
            "disks/{disk-id}"]))
    if kind is not None and kind != "Managed" and not uri.startswith("https://"):
        errs.append(E.unsupported(child(path, "diskURI"), uri, [
            "https://{account-name}.blob.core.windows.net/{container-name}/{disk-name}.vhd"]))
    return errs


def quobyte(src: dict, path: str) -> Errs:
    errs: Errs = []
    reg = s(src.get("registry"))
    hostport = "must be a host:port pair or multiple pairs separated by commas"
    if not reg:
        errs.append(E.required(child(path, "registry"), hostport))
    elif len(s(src.get("tenant"))) >= 65:
        errs.append(E.required(child(path, "tenant"),
                               "must be a UUID and may not exceed a length of 64 characters"))
    else:
        for pair in reg.split(","):
            host, sep, port = pair.rpartition(":")
            if not sep or not port.isdigit():
                errs.append(E.invalid(child(path, "registry"), reg, hostport))
    return errs + _req(src, "volume", path)


def storageos(src: dict, path: str, pv: bool = False) -> Errs:
    errs: Errs = []
    name = s(src.get("volumeName"))
    if not name:
        errs.append(E.required(child(path, "volumeName")))
    else:
        errs += dns1123_label(name, child(path, "volumeName"))
    if s(src.get("volumeNamespace")):
        errs += dns1123_label(s(src.get("volumeNamespace")), child(path, "volumeNamespace"))
    return errs + _optional_secret_ref(src, path, pv)


def scaleio(src: dict, path: str) -> Errs:
    return _req(src, "gateway", path) + _req(src, "system", path) + _req(src, "volumeName", path)


def local(src: dict, path: str) -> Errs:
    p = s(src.get("path"))
    if not p:
        return [E.required(child(path, "path"))]
    return path_no_backsteps(p, child(path, "path"))


def csi_driver_name(name: str, path: str) -> Errs:
    errs: Errs = []
    if not name:
        errs.append(E.required(path))
    if len(name) > 63:
        errs.append(E.too_long(path, 63))
    errs += [E.invalid(path, name, m) for m in F.is_dns1123_subdomain(name.lower())]
    return errs


def _pv_secret_ref(ref: dict, path: str) -> Errs:
    errs: Errs = []
    name, ns = s(ref.get("name")), s(ref.get("namespace"))
    if not name:
        errs.append(E.required(child(path, "name")))
    else:
        errs += dns1123_subdomain(name, child(path, "name"))
    if not ns:
        errs.append(E.required(child(path, "namespace")))
    else:
        errs += dns1123_label(ns, child(path, "namespace"))
    return errs


def csi_pv(src: dict, path: str) -> Errs:
    errs = csi_driver_name(s(src.get("driver")), child(path, "driver"))
    errs += _req(src, "volumeHandle", path)
    for ref in ("controllerPublishSecretRef", "controllerExpandSecretRef",
                "nodePublishSecretRef", "nodeExpandSecretRef"):
        if src.get(ref) is not None:
            errs += _pv_secret_ref(d(src.get(ref)), child(path, ref))
    return errs


def csi_inline(src: dict, path: str) -> Errs:
    errs = csi_driver_name(s(src.get("driver")), child(path, "driver"))
    ref = src.get("nodePublishSecretRef")
    if ref is not None:
        name = s(d(ref).get("name"))
        if not name:
            errs.append(E.required(child(path, "nodePublishSecretRef", "name")))
        else:
            errs += [E.invalid(child(path, "name"), name, m) for m in F.name_is_dns_subdomain(name)]
    return errs


def vsphere(src: dict, path: str) -> Errs:
    return _req(src, "volumePath", path)


def photon(src: dict, path: str) -> Errs:
    return _req(src, "pdID", path)


def portworx(src: dict, path: str) -> Errs:
    return _req(src, "volumeID", path)


# Persistent volume sources, in upstream's order of checking, with the path each is reported
# under (upstream's quirks kept) and its validator.
PV_SOURCES: tuple[tuple[str, str, Callable[..., Errs]], ...] = (
    ("hostPath", "hostPath", host_path),
    ("gcePersistentDisk", "persistentDisk", gce_pd),
    ("awsElasticBlockStore", "awsElasticBlockStore", aws_ebs),
    ("glusterfs", "glusterfs", lambda v, p: glusterfs(v, p, pv=True)),
    ("flocker", "flocker", flocker),
    ("nfs", "nfs", nfs),
    ("rbd", "rbd", rbd),
    ("quobyte", "quobyte", quobyte),
    ("cephfs", "cephfs", cephfs),
    ("iscsi", "iscsi", None),  # needs the PV name: handled by validate_pv_source
    ("cinder", "cinder", lambda v, p: cinder(v, p, pv=True)),
    ("fc", "fc", fc),
    ("flexVolume", "flexVolume", flex),
    ("azureFile", "azureFile", lambda v, p: azure_file(v, p, pv=True)),
    ("vsphereVolume", "vsphereVolume", vsphere),
    ("photonPersistentDisk", "photonPersistentDisk", photon),
    ("portworxVolume", "portworxVolume", portworx),
    ("azureDisk", "azureDisk", azure_disk),
    ("scaleIO", "scaleIO", scaleio),
    ("local", "local", local),
    ("storageos", "storageos", lambda v, p: storageos(v, p, pv=True)),
    ("csi", "csi", csi_pv),
)
PV_SOURCE_FIELDS = tuple(f for f, _, _ in PV_SOURCES)


def validate_pv_source(spec: dict, pv_name: str, path: str) -> tuple[int, Errs]:
    """Count the PV's sources and validate the first one. Returns (count, errors)."""
    errs: Errs = []
    count = 0
    for field, report_as, fn in PV_SOURCES:
        if spec.get(field) is None:
            continue
        # flexVolume is counted without the "more than 1" check upstream.
        if count > 0 and field != "flexVolume":
            errs.append(E.forbidden(child(path, "cephFS" if field == "cephfs" else field),
                                    MORE_THAN_ONE))
            continue
        count += 1
        src = d(spec.get(field))
        if field == "iscsi":
            errs += iscsi(src, child(path, "iscsi"), pv_name)
        else:
            errs += fn(src, child(path, report_as))
    return count, errs


def _keyed_volume(src: dict, name_field: str, path: str) -> Errs:
    # Secret and configMap volumes: a required name, a defaultMode, and key-to-path items.
    errs = _req(src, name_field, path) + _mode(src.get("defaultMode"), child(path, "defaultMode"))
    for i, kp in enumerate(lst(src.get("items"))):
        errs += key_to_path(kp, index(child(path, "items"), i))
    return errs


def _secret_volume(src: dict, path: str) -> Errs:
    return _keyed_volume(src, "secretName", path)


def _config_map_volume(src: dict, path: str) -> Errs:
    return _keyed_volume(src, "name", path)


_VOLUME_FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.labels",
                       "metadata.annotations", "metadata.uid"}


def _downward_file(f: dict, path: str) -> Errs:
    from k1s.api.validation.core_pod import (CONTAINER_RESOURCE_PATHS,
                                              validate_object_field_selector,
                                              validate_resource_field_selector)
    errs: Errs = []
    if not s(f.get("path")):
        errs.append(E.required(child(path, "path")))
    errs += local_non_reserved_path(s(f.get("path")), child(path, "path"))
    if f.get("fieldRef") is not None:
        errs += validate_object_field_selector(d(f.get("fieldRef")), _VOLUME_FIELD_PATHS,
                                               child(path, "fieldRef"))
        if f.get("resourceFieldRef") is not None:
            errs.append(E.invalid(path, "resource", "fieldRef and resourceFieldRef can not be "
                                  "specified simultaneously"))
    elif f.get("resourceFieldRef") is not None:
        errs += validate_resource_field_selector(d(f.get("resourceFieldRef")),
                                                 CONTAINER_RESOURCE_PATHS,
                                                 child(path, "resourceFieldRef"), True)
    else:
        errs.append(E.required(path, "one of fieldRef and resourceFieldRef is required"))
    errs += _mode(f.get("mode"), child(path, "mode"))
    return errs


def _downward_api(src: dict, path: str) -> Errs:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    for f in lst(src.get("items")):
        errs += _downward_file(d(f), path)
    return errs


def _projected(src: dict, path: str) -> Errs:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    seen: set[str] = set()
    for i, source in enumerate(lst(src.get("sources"))):
        source = d(source)
        sp = index(child(path, "sources"), i)
        n = 0
        for kind in ("secret", "configMap"):
            if source.get(kind) is None:
                continue
            n += 1
            sub = d(source.get(kind))
            pp = child(sp, kind)
            if not s(sub.get("name")):
                errs.append(E.required(child(pp, "name")))
            for j, kp in enumerate(lst(sub.get("items"))):
                errs += key_to_path(kp, index(child(pp, "items"), j))
                kpath = s(d(kp).get("path"))
                if kpath:
                    if kpath in seen:
                        errs.append(E.invalid(path, s(sub.get("name")),
                                              "conflicting duplicate paths"))
                    seen.add(kpath)
        if source.get("downwardAPI") is not None:
            n += 1
            for f in lst(d(source.get("downwardAPI")).get("items")):
                errs += _downward_file(d(f), child(sp, "downwardAPI"))
                fpath = s(d(f).get("path"))
                if fpath:
                    if fpath in seen:
                        errs.append(E.invalid(path, fpath, "conflicting duplicate paths"))
                    seen.add(fpath)
        if source.get("serviceAccountToken") is not None:
            n += 1
            tok = d(source.get("serviceAccountToken"))
            tp = child(sp, "serviceAccountToken")
            exp = num(tok.get("expirationSeconds"), 3600)
            if exp < 600:
                errs.append(E.invalid(child(tp, "expirationSeconds"), exp,
                                      "may not specify a duration less than 10 minutes"))
            if exp > 1 << 32:
                errs.append(E.invalid(child(tp, "expirationSeconds"), exp,
                                      "may not specify a duration larger than 2^32 seconds"))
            if not s(tok.get("path")):
                errs.append(E.required(child(path, "path")))
            else:
                errs += local_non_reserved_path(s(tok.get("path")), child(path, "path"))
        if source.get("clusterTrustBundle") is not None:
            n += 1
            ctb = d(source.get("clusterTrustBundle"))
            cp = child(sp, "clusterTrustBundle")
            if not s(ctb.get("path")):
                errs.append(E.required(child(cp, "path")))
        if n > 1:
            errs.append(E.forbidden(sp, "may not specify more than 1 volume type per source"))
    return errs


def _ephemeral(src: dict, path: str) -> Errs:
    from k1s.api.validation.meta import validate_template_object_meta
    from k1s.api.validation.storage import validate_pvc_spec
    tmpl = src.get("volumeClaimTemplate")
    if tmpl is None:
        return [E.required(child(path, "volumeClaimTemplate"))]
    tp = child(path, "volumeClaimTemplate")
    tmpl = d(tmpl)
    return (validate_template_object_meta(tmpl.get("metadata"), child(tp, "metadata"))
            + validate_pvc_spec(d(tmpl.get("spec")), child(tp, "spec")))


def _empty_dir(src: dict, path: str) -> Errs:
    from k1s.api.validation.common import parse_quantity
    limit = src.get("sizeLimit")
    if limit is not None:
        try:
            if parse_quantity(limit) < 0:
                return [E.forbidden(child(path, "sizeLimit"),
                                    "SizeLimit field must be a valid resource quantity")]
        except ValueError as exc:
            return [E.invalid(child(path, "sizeLimit"), limit, str(exc))]
    return []


def _image(src: dict, path: str) -> Errs:
    errs: Errs = []
    if not s(src.get("reference")):
        errs.append(E.required(child(path, "reference")))
    pol = src.get("pullPolicy")
    errs += optional_one_of(pol, ("Always", "IfNotPresent", "Never"), child(path, "pullPolicy"))
    return errs


def _pvc_source(src: dict, path: str) -> Errs:
    return _req(src, "claimName", path)


def _git_repo(src: dict, path: str) -> Errs:
    return _req(src, "repository", path) + local_descending_path(s(src.get("directory")),
                                                                 child(path, "directory"))


# Pod volume sources in upstream's order: (field, reported path, validator).
POD_SOURCES: tuple[tuple[str, str, Callable[[dict, str], Errs]], ...] = (
    ("emptyDir", "emptyDir", _empty_dir),
    ("hostPath", "hostPath", host_path),
    ("gitRepo", "gitRepo", _git_repo),
    ("gcePersistentDisk", "persistentDisk", gce_pd),
    ("awsElasticBlockStore", "awsElasticBlockStore", aws_ebs),
    ("secret", "secret", _secret_volume),
    ("nfs", "nfs", nfs),
    ("iscsi", "iscsi", lambda v, p: iscsi(v, p)),
    ("glusterfs", "glusterfs", glusterfs),
    ("flocker", "flocker", flocker),
    ("persistentVolumeClaim", "persistentVolumeClaim", _pvc_source),
    ("rbd", "rbd", rbd),
    ("cinder", "cinder", cinder),
    ("cephfs", "cephfs", cephfs),
    ("quobyte", "quobyte", quobyte),
    ("downwardAPI", "downwardAPI", _downward_api),
    ("fc", "fc", fc),
    ("flexVolume", "flexVolume", flex),
    ("configMap", "configMap", _config_map_volume),
    ("azureFile", "azureFile", azure_file),
    ("vsphereVolume", "vsphereVolume", vsphere),
    ("photonPersistentDisk", "photonPersistentDisk", photon),
    ("portworxVolume", "portworxVolume", portworx),
    ("azureDisk", "azureDisk", azure_disk),
    ("storageos", "storageos", storageos),
    ("projected", "projected", _projected),
    ("scaleIO", "scaleIO", scaleio),
    ("csi", "csi", csi_inline),
    ("ephemeral", "ephemeral", _ephemeral),
    ("image", "image", _image),
)
POD_SOURCE_FIELDS = tuple(f for f, _, _ in POD_SOURCES)

# Upstream reports a second source under these (misspelt) names.
_SECOND_SOURCE_NAME = {"cephfs": "cephFS", "downwardAPI": "downwarAPI"}


def validate_pod_volume_source(vol: dict, path: str) -> Errs:
    errs: Errs = []
    count = 0
    for field, report_as, fn in POD_SOURCES:
        if vol.get(field) is None:
            continue
        if count > 0:
            errs.append(E.forbidden(child(path, _SECOND_SOURCE_NAME.get(field, field)),
                                    MORE_THAN_ONE))
            continue
        count += 1
        src = vol.get(field)
        errs += fn(d(src), child(path, report_as))
        if field == "iscsi" and d(src).get("initiatorName") is not None and \
                len(s(vol.get("name")) + ":" + s(d(src).get("targetPortal"))) > 64:
            errs.append(E.invalid(child(path, "name"), s(vol.get("name")),
                                  "Total length of <volume name>:<iscsi.targetPortal> must be "
                                  "under 64 characters if iscsi.initiatorName is specified."))
    if count == 0:
        errs.append(E.required(path, "must specify a volume type"))
    return errs


def clean_path_is_root(p: str) -> bool:
    return posixpath.normpath(p or ".") == "/"
