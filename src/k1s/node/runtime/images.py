"""The image catalog: images cannot be pulled here, so a container runs on the host's root
filesystem (through a private copy-on-write view) and its image is resolved to what makes it
behave like the official one: entrypoint, cmd, environment, and files laid over the view.

- `parse_reference("docker.io/library/nginx:1.25")` -> ("nginx", "1.25"): the registry, the
  `library/` prefix, the tag and the digest do not change which catalog entry runs.
- `resolve(image, command, args)` -> `Resolved` (argv, env, files, links) with upstream's
  rule: `command` replaces the entrypoint and drops the image's cmd, `args` replace the cmd.
  An unknown image runs only with a command; otherwise `ImageNotKnown` (the agent turns it into
  a Waiting container with that reason and message).
- `materialize(data_dir, entry)` writes an entry's files once under `<data>/images/<name>/`;
  the sandbox bind-mounts them read-only over the container's view.

Host packages the entries use (Debian): nginx-light (or nginx) for nginx, busybox for busybox.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DEFAULT_REGISTRIES = ("docker.io", "index.docker.io", "registry-1.docker.io")


class ImageNotKnown(Exception):
    """Reason `ImageNotKnown`: the agent reports it as the container's Waiting reason."""
    reason = "ImageNotKnown"


class InvalidImageName(ImageNotKnown):
    reason = "InvalidImageName"


@dataclass(frozen=True)
class Entry:
    name: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = (("PATH", DEFAULT_PATH),)
    working_dir: str = "/"
    files: tuple[tuple[str, str], ...] = ()      # container path -> content (read-only bind)
    dirs: tuple[tuple[str, str], ...] = ()       # container path -> host dir made by a helper
    binaries: tuple[str, ...] = ()               # host programs it needs (a clear error if not)
    stop_signal: str = "SIGTERM"


@dataclass
class Resolved:
    image: str
    entry: Entry | None
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"


# nginx as the official image configures it: /etc/nginx/nginx.conf including conf.d/*.conf,
# one server on port 80 serving /usr/share/nginx/html, access log to stdout, errors to stderr
# (the official image symlinks its log files to /dev/stdout and /dev/stderr).
NGINX_CONF = """\
user  www-data;
worker_processes  auto;

error_log  /dev/stderr notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /dev/stdout  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"""

NGINX_DEFAULT_SERVER = """\
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""

NGINX_INDEX = """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
</body>
</html>
"""

NGINX_50X = """\
<!DOCTYPE html>
<html>
<head>
<title>Error</title>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.</p>
</body>
</html>
"""

CATALOG: dict[str, Entry] = {
    "nginx": Entry(
        name="nginx", cmd=("nginx", "-g", "daemon off;"), stop_signal="SIGQUIT",
        env=(("PATH", DEFAULT_PATH), ("NGINX_VERSION", "1.22.1")),
        files=(("/etc/nginx/nginx.conf", NGINX_CONF),
               ("/etc/nginx/conf.d/default.conf", NGINX_DEFAULT_SERVER),
               ("/usr/share/nginx/html/index.html", NGINX_INDEX),
               ("/usr/share/nginx/html/50x.html", NGINX_50X)),
        binaries=("/usr/sbin/nginx",)),
    # busybox: every applet first on PATH (/usr/local/bin, a directory of links to the host's
    # busybox), so `sh`, `nslookup`, `wget` are busybox's as in the official image
    "busybox": Entry(name="busybox", cmd=("sh",), dirs=(("/usr/local/bin", "busybox-bin"),),
                     binaries=("/usr/bin/busybox",)),
    "pause": Entry(name="pause", entrypoint=("sleep", "infinity")),
}
# images that are the same program for our purposes
ALIASES = {"library/nginx": "nginx", "nginxinc/nginx-unprivileged": "nginx",
           "library/busybox": "busybox", "registry.k8s.io/pause": "pause",
           "k8s.gcr.io/pause": "pause", "gcr.io/google_containers/pause": "pause",
           "registry.k8s.io/e2e-test-images/busybox": "busybox"}


def parse_reference(image: str) -> tuple[str, str]:
    """(repository without a default registry or `library/`, tag or digest)."""
    ref = (image or "").strip()
    if not ref:
        raise InvalidImageName("image name is empty")
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = ""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
        if not TAG_RE.match(tag):
            raise InvalidImageName(f"invalid image reference {image!r}: bad tag {tag!r}")
    parts = ref.split("/")
    if len(parts) > 1 and parts[0] in DEFAULT_REGISTRIES:
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    repo = "/".join(parts)
    check = repo.split("/", 1)[1] if ("." in parts[0] or ":" in parts[0]) and \
        len(parts) > 1 else repo
    if not NAME_RE.match(check):
        raise InvalidImageName(f"invalid image name {image!r}")
    return repo, digest or tag or "latest"


def lookup(image: str) -> Entry | None:
    repo, _tag = parse_reference(image)
    return CATALOG.get(ALIASES.get(repo, repo))


def resolve(image: str, command: list[str] | None = None,
            args: list[str] | None = None) -> Resolved:
    entry = lookup(image)
    if entry is None:
        if not command:
            raise ImageNotKnown(
                f"image {image!r} is not in this node's image catalog (known: "
                f"{', '.join(sorted(CATALOG))}) and the container gives no command")
        argv = list(command) + list(args or [])
        return Resolved(image, None, argv, {"PATH": DEFAULT_PATH}, "/")
    missing = [b for b in entry.binaries if not os.path.exists(b)]
    if missing:
        raise ImageNotKnown(f"image {image!r} needs {', '.join(missing)} on the node: "
                            f"install its Debian package")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(entry.entrypoint) + (list(args) if args else list(entry.cmd))
    if not argv:
        raise ImageNotKnown(f"image {image!r} has no entrypoint or cmd and no command given")
    return Resolved(image, entry, argv, dict(entry.env), entry.working_dir)


def images_dir(data_dir: str) -> str:
    return os.path.join(os.path.realpath(data_dir), "images")


def materialize(data_dir: str, entry: Entry) -> list[tuple[str, str]]:
    """The (host path, container path) pairs to bind read-only for `entry`, written once."""
    root = os.path.join(images_dir(data_dir), entry.name)
    out: list[tuple[str, str]] = []
    for i, (cpath, content) in enumerate(entry.files):
        host = os.path.join(root, "files", str(i))
        if not _same(host, content):
            os.makedirs(os.path.dirname(host), exist_ok=True)
            tmp = f"{host}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, host)
        out.append((host, cpath))
    for cpath, helper in entry.dirs:
        out.append((_DIR_MAKERS[helper](os.path.join(root, helper)), cpath))
    return out


def _same(path: str, content: str) -> bool:
    try:
        with open(path) as f:
            return f.read() == content
    except FileNotFoundError:
        return False


def _busybox_bin(target: str) -> str:
    """A directory of links, one per busybox applet, to the host's busybox."""
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    done = os.path.join(target, ".complete")
    if os.path.exists(done):
        return target
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    tmp = f"{target}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for a in applets:
        if "/" not in a and a not in (".", ".."):
            os.symlink(busybox, os.path.join(tmp, a))
    open(os.path.join(tmp, ".complete"), "w").close()
    try:
        os.rename(tmp, target)
    except OSError:                       # another start made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


_DIR_MAKERS = {"busybox-bin": _busybox_bin}
