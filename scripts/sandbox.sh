#!/usr/bin/env bash
# sandbox.sh up|down [DIR] — a local target host for `make demo`: a real OpenSSH sshd on 127.0.0.1:2222 and
# a real supervisord, both started inside their own mount namespace in which DIR/srv is bind-mounted over /srv,
# so the demo deploys to /srv/demo exactly as it would on a server, without touching the machine's /srv.
# Needs root (for the namespace and sshd's privilege separation); logs in as the user skiff-demo.
set -euo pipefail
action="${1:-up}"
dir="$(realpath -m "${2:-.sandbox}")"
user=skiff-demo
port="${SKIFF_SANDBOX_PORT:-2222}"

die() { echo "sandbox: $*" >&2; exit 1; }

down() {
	if [ -f "$dir/run/sandbox.pid" ]; then
		pgid="$(cat "$dir/run/sandbox.pid")"
		kill -TERM -- "-$pgid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pgid" 2>/dev/null || true
		rm -f "$dir/run/sandbox.pid"
	fi
}

up() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (it starts sshd and uses a mount namespace)"
	down
	mkdir -p "$dir/etc" "$dir/run" "$dir/log" "$dir/srv/run"
	chmod 0755 "$dir" "$dir/etc"
	id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
	usermod -p "*" "$user" # "!" (locked) makes sshd refuse even key logins when PAM is off
	[ -f "$dir/etc/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sandbox-host -f "$dir/etc/host_ed25519"
	[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C skiff-demo -f "$dir/id_ed25519"
	cp "$dir/id_ed25519.pub" "$dir/etc/authorized_keys"
	chmod 0644 "$dir/etc/authorized_keys"
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/etc/host_ed25519.pub")" >"$dir/known_hosts"
	mkdir -p /run/sshd
	cat >"$dir/etc/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $dir/etc/host_ed25519
PidFile $dir/run/sshd.pid
AuthorizedKeysFile $dir/etc/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $user
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
Subsystem sftp internal-sftp
CONF
	cat >"$dir/etc/supervisord.conf" <<CONF
[unix_http_server]
file=/srv/run/supervisor.sock
chmod=0700
chown=$user:$user

[supervisord]
nodaemon=true
logfile=$dir/log/supervisord.log
pidfile=$dir/run/supervisord.pid
childlogdir=$dir/log

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:demo]
command=/srv/demo/current/.venv/bin/python /srv/demo/current/server.py --port 8088
directory=/srv/demo
user=$user
autostart=false
startsecs=1
startretries=1
stopasgroup=true
killasgroup=true
CONF
	chown -R "$user:$user" "$dir/srv"
	mkdir -p /srv
	# One shell in a private mount namespace starts both daemons, so they see the same /srv.
	setsid unshare --mount --propagation private sh -c '
		mount --bind "$1/srv" /srv || exit 1
		/usr/sbin/sshd -D -f "$1/etc/sshd_config" -E "$1/log/sshd.log" &
		/usr/bin/supervisord -c "$1/etc/supervisord.conf" &
		wait' sandbox "$dir" </dev/null >"$dir/log/sandbox.log" 2>&1 &
	echo $! >"$dir/run/sandbox.pid"
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ -S "$dir/srv/run/supervisor.sock" ]; then
			echo "sandbox: sshd on 127.0.0.1:$port (user $user), supervisord at unix:///srv/run/supervisor.sock, /srv = $dir/srv"
			return 0
		fi
		sleep 0.1
	done
	cat "$dir/log/sandbox.log" "$dir/log/sshd.log" 2>/dev/null | tail -20 >&2
	die "sshd or supervisord did not come up"
}

# images starts a registry on 127.0.0.1:$registry_port (Debian's docker-registry) and pushes three images of the
# demo web app built with `docker import` from static busybox: v1, v2 and a broken v3 whose server never starts.
registry_port="${SKIFF_SANDBOX_REGISTRY_PORT:-5055}"
images() {
	docker info >/dev/null 2>&1 || die "no Docker Engine reachable"
	id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
	usermod -aG docker "$user"
	mkdir -p "$dir/registry" "$dir/etc" "$dir/run" "$dir/log" # images runs before up on a fresh checkout
	cat >"$dir/etc/registry.yml" <<CONF
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/registry
http:
  addr: 127.0.0.1:$registry_port
CONF
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$registry_port") 2>/dev/null; then
		setsid /usr/bin/docker-registry serve "$dir/etc/registry.yml" </dev/null >"$dir/log/registry.log" 2>&1 &
		echo $! >"$dir/run/registry.pid"
		for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$registry_port") 2>/dev/null && break; sleep 0.1; done
	fi
	for v in v1 v2 v3; do
		root="$dir/image-$v"
		rm -rf "$root" && mkdir -p "$root/bin" "$root/www"
		cp /bin/busybox "$root/bin/busybox"
		ln -sf busybox "$root/bin/sh"
		echo "hello from the skiff image demo $v" >"$root/www/index.html"
		cmd='["/bin/busybox","httpd","-f","-p","8080","-h","/www"]'
		[ "$v" = v3 ] && cmd='["/bin/busybox","sh","-c","echo this image is broken on purpose; exit 1"]'
		tar -C "$root" -cf - . | docker import --change "CMD $cmd" - "127.0.0.1:$registry_port/demo/web:$v" >/dev/null
		docker push -q "127.0.0.1:$registry_port/demo/web:$v" >/dev/null
		docker image rm "127.0.0.1:$registry_port/demo/web:$v" >/dev/null
	done
	echo "sandbox: registry on 127.0.0.1:$registry_port with demo/web:v1, v2 and a broken v3"
}

images_down() {
	if [ -f "$dir/run/registry.pid" ]; then
		kill "$(cat "$dir/run/registry.pid")" 2>/dev/null || true
		rm -f "$dir/run/registry.pid"
	fi
	docker-compose -p web -f "$dir/srv/web/compose.yaml" down >/dev/null 2>&1 || true
	docker ps -aq --filter label=com.docker.compose.project=web | xargs -r docker rm -f >/dev/null 2>&1 || true
	docker image ls -q "127.0.0.1:$registry_port/demo/web" | sort -u | xargs -r docker image rm -f >/dev/null 2>&1 || true
}

case "$action" in
up) up ;;
down) down ;;
images) images ;;
images-down) images_down ;;
*) die "usage: sandbox.sh up|down|images|images-down [DIR]" ;;
esac
