#!/usr/bin/env bash
# deps.sh PURPOSE — installs the Debian packages skiff's tests, demo or benchmarks need when they are missing.
# As root it runs apt-get; otherwise it lists what is missing and leaves the decision to the caller (tests skip
# what they cannot run, except under CI=true where a missing tool is a failure).
set -euo pipefail
purpose="${1:-test}"

need=()
want() { # want COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || need+=("$2")
}
want /usr/sbin/sshd openssh-server
want ssh openssh-client
want supervisord supervisor
want rsync rsync
want busybox busybox-static
want ip iproute2
case "$purpose" in
test | demo)
	# builds make real venvs: python3 -m venv needs ensurepip, which Debian ships apart
	python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
	;;
esac
case "$purpose" in
test | bench | demo)
	want docker-registry docker-registry
	want htpasswd apache2-utils
	;;
esac
case "$purpose" in
test) want /usr/bin/chromium-headless-shell chromium-headless-shell ;; # the status page test (chromedp)
esac
case "$purpose" in
bench) want ansible-playbook ansible; want parallel-ssh pssh ;;
esac

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages (install as root): ${need[*]}" >&2
	exit 0
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
