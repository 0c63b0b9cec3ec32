#!/usr/bin/env bash
# demo.sh — what `make demo` runs: start the sandbox target, then check, deploy, redeploy a change, watch a
# broken release roll itself back, roll back by hand, and show the history. Everything runs against real
# sshd and supervisord on this machine; nothing outside .sandbox/ is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
skiff=(bin/skiff -i hosts.toml)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (the sandbox target starts sshd in a private mount namespace)" >&2
	exit 2
fi
rm -rf .sandbox/srv/demo # every demo starts from a fresh target
rm -rf .sandbox/srv/web
images=no
if docker info >/dev/null 2>&1 && command -v docker-registry >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1; then
	images=yes
fi
trap 'scripts/sandbox.sh down .sandbox; [ $images = no ] || scripts/sandbox.sh images-down .sandbox' EXIT
[ $images = no ] || scripts/sandbox.sh images .sandbox # before `up`: the login user joins the docker group
scripts/sandbox.sh up .sandbox

work=.sandbox/work
rm -rf "$work" && mkdir -p "$work" && cp -a examples/app "$work/v2" && cp -a examples/app "$work/broken"
echo v2 >"$work/v2/VERSION"
cp -a "$work/v2" "$work/v3" && echo v3 >"$work/v3/VERSION" && echo 'greeting==2.0' >"$work/v3/requirements.txt"
printf 'import sys\nsys.exit("this release is broken on purpose")\n' >"$work/broken/server.py"

step "skiff check: SSH, host key, user, supervisord"
"${skiff[@]}" check

step "skiff deploy demo (first release: examples/app, v1; its venv is built once for its requirements.txt)"
"${skiff[@]}" deploy demo
"${skiff[@]}" exec -- python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:8088/").read().decode().strip())'

step "skiff deploy demo --source $work/v2 (only the changed file is sent; same requirements.txt: the venv is reused)"
"${skiff[@]}" deploy demo --source "$work/v2"
"${skiff[@]}" exec -- python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:8088/").read().decode().strip())'

step "skiff deploy demo --source $work/v3 (requirements.txt pins greeting 2.0: the venv is built again, once)"
"${skiff[@]}" deploy demo --source "$work/v3"
"${skiff[@]}" exec -- python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:8088/").read().decode().strip())'

step "skiff deploy a broken release: it fails its check and rolls back by itself (exit code 1)"
set +e
"${skiff[@]}" deploy demo --source "$work/broken"
echo "exit code: $?"
set -e
"${skiff[@]}" status demo

step "skiff rollback demo (back to v2 and its greeting 1.0 venv by hand: nothing is built)"
"${skiff[@]}" rollback demo
"${skiff[@]}" exec -- python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:8088/").read().decode().strip())'

step "skiff releases demo (with the venv build each release links)"
"${skiff[@]}" releases demo

if [ $images = yes ]; then
	img=(bin/skiff -i examples/image/hosts.toml)
	web='python3 -c "import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:8089/\").read().decode().strip())"'
	step "skiff deploy web --tag v1 (an image app: pull, pin the digest, bring up one compose service)"
	"${img[@]}" deploy web --tag v1
	"${img[@]}" exec -- "$web"
	step "skiff deploy web --tag v2"
	"${img[@]}" deploy web --tag v2
	"${img[@]}" exec -- "$web"
	step "skiff deploy web --tag v3 (its container exits at once: rolled back to the v2 digest, exit code 1)"
	set +e
	"${img[@]}" deploy web --tag v3
	echo "exit code: $?"
	set -e
	step "skiff rollback web (back to the exact v1 digest)"
	"${img[@]}" rollback web
	"${img[@]}" exec -- "$web"
	"${img[@]}" releases web
else
	echo
	echo "(no Docker Engine, docker-registry or docker-compose here: the image half of the demo is skipped)"
fi
echo
echo "demo done: the sandbox is stopped on exit; its files stay in .sandbox/ (make clean removes them)"
