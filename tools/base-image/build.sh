#!/usr/bin/env bash
# The images' Python base, made from Debian packages where no container registry answers
# (offline, behind a proxy, or in CI): debootstrap a minimal bookworm from this host's own Debian
# mirror, add bookworm's python3 (3.11, the venv's version), python3-venv, python3-pip and
# ca-certificates, trust this host's extra CA certificates, then `docker import` the tree.
#
#   sudo tools/base-image/build.sh [IMAGE]      # default IMAGE: mnist-python-base:3.11-bookworm
#   make images PYTHON_IMAGE=mnist-python-base:3.11-bookworm
#
# Settings (environment): DOCKER (the docker CLI, default /usr/bin/docker where it exists),
# DEBIAN_MIRROR (default: the first bookworm mirror of this host's apt sources, else
# deb.debian.org), EXTRA_CA_DIR (default /usr/local/share/ca-certificates: every *.crt in it is
# trusted inside the image too, so pip in an image build gets through the same TLS proxy the host
# does). Needs root (debootstrap) and about 40 s.
set -euo pipefail

image=${1:-mnist-python-base:3.11-bookworm}
suite=bookworm
docker=${DOCKER:-$(if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else echo docker; fi)}
extra_ca_dir=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}

die() { echo "error: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "debootstrap needs root: run 'sudo $0 $*'"
command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install debootstrap"
command -v "$docker" >/dev/null || die "'$docker' not found: install Docker (Debian: apt-get install docker.io) or set DOCKER"
"$docker" info >/dev/null 2>&1 || die "'$docker' cannot reach a Docker engine: start dockerd"

# The Debian mirror this host installs from (deb822 .sources or one-line sources.list), so a
# host behind a proxy or with a local mirror builds from the same place.
host_mirror() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    # the URIs of a stanza whose Suites name the bare suite (not -security / -updates)
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri && hit) { print uri; exit } uri = ""; hit = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
      END { if (uri && hit) print uri }' "$file" | head -n 1
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == suite) { print (($2 ~ /^\[/) ? $3 : $2); exit } }' "$file"
  done
}
mirror=${DEBIAN_MIRROR:-$(host_mirror | grep -m 1 -v -e '^$' || true)}
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d "${TMPDIR:-/tmp}/python-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
started=$(date +%s)
echo "base image $image: debootstrap --variant=minbase $suite from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; die "debootstrap failed (log above)"; }
rm -f "$root.log"

# The suite and its point-release updates, for an apt-get in a later layer.
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" >"$root/etc/apt/sources.list"

# This host's extra CA certificates, trusted by the image's OpenSSL (pip, requests) as well.
shopt -s nullglob
extra=("$extra_ca_dir"/*.crt)
if [ ${#extra[@]} -gt 0 ]; then
  cp "${extra[@]}" "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
  echo "trusted ${#extra[@]} extra CA certificate(s) from $extra_ca_dir"
fi

# What a runtime image never reads: apt's lists and downloads, docs, man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/info/* "$root"/var/log/*.log

tar -C "$root" -c . | "$docker" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.title=mnist-python-base org.opencontainers.image.description=\"Debian $suite (debootstrap minbase) with python3, python3-venv, python3-pip\"" \
  - "$image" >/dev/null
echo "base image $image: $("$docker" run --rm "$image" python3 --version) in $(($(date +%s) - started)) s," \
  "$("$docker" image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1 / 1e6}')"
