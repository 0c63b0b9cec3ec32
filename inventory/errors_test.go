package inventory

import (
	"errors"
	"testing"
)

// hostsOK is a valid start that most broken inventories build on.
const hostsOK = `[hosts.web1]
address = "10.0.0.11"
groups = ["web"]

[hosts.web2]
address = "10.0.0.12"
groups = ["web"]
`

func TestLoad_Errors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want string
	}{
		{"syntax error", "[hosts.web1\naddress = 1\n",
			`hosts.toml:2: expected '.' or ']' to end table name, but got '\n' instead`},
		{"unknown top-level key", "colour = \"blue\"\n" + hostsOK,
			`hosts.toml:1: colour: unknown key`},
		{"unknown host key", hostsOK + "prot = 22\n",
			`hosts.toml:8: hosts.web2.prot: unknown key`},
		{"unknown key reported first by line", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nfoo = 1\n[defaults]\nbar = 2\n",
			`hosts.toml:11: apps.api.foo: unknown key`},
		{"unknown key with other case", hostsOK + "Port = 22\n",
			`hosts.toml:8: hosts.web2.Port: unknown key`},
		{"unknown key in schedule element", hostsOK + "[[schedules]]\nname = \"a\"\ncron = \"@daily\"\njob = \"prune\"\n[[schedules]]\nname = \"b\"\ncron = \"@daily\"\njob = \"prune\"\nextra = true\n",
			`hosts.toml:16: schedules[1].extra: unknown key`},
		{"unknown nested table", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.deploy]\nx = 1\n",
			`hosts.toml:11: apps.api.deploy: unknown key`},
		{"env value not a string", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.env]\nvalues = { PORT = 8080 }\n",
			`hosts.toml:12: apps.api.env.values.PORT: must be a string, not an integer`},
		{"env bad key", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.env]\nvalues = { \"A-B\" = \"x\" }\n",
			`hosts.toml:12: apps.api.env.values.A-B: "A-B" is not an environment variable name`},
		{"env secret also a value", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.env]\nvalues = { DB = \"x\" }\nsecret_env = [\"DB\"]\n",
			`hosts.toml:13: apps.api.env.secret_env: "DB" is also set in values`},
		{"env file escapes shared", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.env]\nfile = \"../x\"\n",
			`hosts.toml:12: apps.api.env.file: "../x" must not contain ..`},
		{"env unknown key", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.env]\nsecrets = [\"X\"]\n",
			`hosts.toml:12: apps.api.env.secrets: unknown key`},
		{"notify two kinds", hostsOK + "[[notify]]\nurl = \"http://x\"\ncommand = [\"cat\"]\n",
			`hosts.toml:8: notify[0]: needs exactly one of command, url and slack_webhook_env`},
		{"notify unknown event", hostsOK + "[[notify]]\nurl = \"http://x\"\non = [\"deploys\"]\n",
			`hosts.toml:10: notify[0].on: unknown event "deploys" (want deploy, rollback, prune, cron, failure)`},
		{"notify bad url", hostsOK + "[[notify]]\nurl = \"ftp://x\"\n",
			`hosts.toml:9: notify[0].url: "ftp://x" must be an http:// or https:// URL`},
		{"notify secret for command", hostsOK + "[[notify]]\ncommand = [\"cat\"]\nsecret_env = \"S\"\n",
			`hosts.toml:10: notify[0].secret_env: only for url`},
		{"notify unknown key", hostsOK + "[[notify]]\nurl = \"http://x\"\nsecret = \"S\"\n",
			`hosts.toml:10: notify[0].secret: unknown key`},
		{"integer duration", "[defaults]\nconnect_timeout = 10\n" + hostsOK,
			`hosts.toml:2: defaults.connect_timeout: durations are strings, write "10s"`},
		{"bad duration string", "[defaults]\nkeepalive = \"ten seconds\"\n" + hostsOK,
			`hosts.toml:2: defaults.keepalive: invalid duration "ten seconds" (write it like "10s", "5m" or "1h30m")`},
		{"negative duration", hostsOK + "connect_timeout = \"-5s\"\n",
			`hosts.toml:8: hosts.web2.connect_timeout: must not be negative`},
		{"port wrong type", hostsOK + "port = \"22\"\n",
			`hosts.toml:8: hosts.web2.port: must be an integer, not a string`},
		{"port out of range", hostsOK + "port = 70000\n",
			`hosts.toml:8: hosts.web2.port: must be between 1 and 65535`},
		{"port zero in defaults", "[defaults]\nport = 0\n" + hostsOK,
			`hosts.toml:2: defaults.port: must be between 1 and 65535`},
		{"hosts not a table", "hosts = 5\n",
			`hosts.toml:1: hosts: must be a table, not an integer`},
		{"host not a table", "[hosts]\nweb1 = \"10.0.0.1\"\n",
			`hosts.toml:2: hosts.web1: must be a table, not a string`},
		{"groups wrong item type", "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\", 2]\n",
			`hosts.toml:3: hosts.web1.groups: must be an array of strings; item 2 is an integer`},
		{"missing address", "[hosts.web1]\nport = 22\n",
			`hosts.toml:1: hosts.web1.address: is required`},
		{"empty address", "[hosts.web1]\naddress = \"\"\n",
			`hosts.toml:2: hosts.web1.address: must not be empty`},
		{"address starting with dash", "[hosts.web1]\naddress = \"-oProxyCommand=x\"\n",
			`hosts.toml:2: hosts.web1.address: "-oProxyCommand=x" must not start with -`},
		{"all as host name", "[hosts.all]\naddress = \"10.0.0.1\"\n",
			`hosts.toml:1: hosts.all: "all" is the group of every host and cannot name a host`},
		{"bad host name", "[hosts.\"web 1\"]\naddress = \"10.0.0.1\"\n",
			`hosts.toml:1: hosts."web 1": invalid host name "web 1": ' ' is not allowed (use letters, digits, '.', '_' and '-')`},
		{"host name starting with dash", "[hosts.-web]\naddress = \"10.0.0.1\"\n",
			`hosts.toml:1: hosts.-web: invalid host name "-web": must not start with -`},
		{"empty host name", "[hosts.\"\"]\naddress = \"10.0.0.1\"\n",
			`hosts.toml:1: hosts."": invalid host name "": must not be empty`},
		{"bad group name", "[hosts.web1]\naddress = \"10.0.0.1\"\ngroups = [\"we/b\"]\n",
			`hosts.toml:3: hosts.web1.groups: invalid group name "we/b": '/' is not allowed (use letters, digits, '.', '_' and '-')`},
		{"group named like a host", hostsOK + "[hosts.db]\naddress = \"10.0.0.20\"\ngroups = [\"web1\"]\n",
			`hosts.toml:10: hosts.db.groups: group "web1" has the name of a host`},
		{"all listed as group", "[hosts.web1]\naddress = \"10.0.0.1\"\ngroups = [\"all\"]\n",
			`hosts.toml:3: hosts.web1.groups: "all" is implicit and cannot be listed`},
		{"duplicate endpoint", hostsOK + "[hosts.web3]\naddress = \"10.0.0.11\"\n",
			`hosts.toml:9: hosts.web3.address: same address, port and user as host "web1" (10.0.0.11:22)`},
		{"unknown jump host", hostsOK + "jump = \"bastion\"\n",
			`hosts.toml:8: hosts.web2.jump: unknown host "bastion"`},
		{"self jump", hostsOK + "jump = \"web2\"\n",
			`hosts.toml:8: hosts.web2.jump: host "web2" cannot jump through itself`},
		{"jump loop", "[hosts.a]\naddress = \"10.0.0.1\"\njump = \"b\"\n[hosts.b]\naddress = \"10.0.0.2\"\njump = \"a\"\n",
			`hosts.toml:3: hosts.a.jump: jump loop: a -> b -> a`},
		{"unknown default jump", "[defaults]\njump = \"gw\"\n" + hostsOK,
			`hosts.toml:2: defaults.jump: unknown host "gw"`},
		{"unknown registry", hostsOK + "[apps.shop]\nhosts = [\"web1\"]\npath = \"/srv/shop\"\nimage = \"r.example.com/shop\"\nservice = \"app\"\nregistry = \"main\"\n",
			`hosts.toml:13: apps.shop.registry: unknown registry "main"`},
		{"registry without server", "[registries.main]\nusername = \"ci\"\npassword_env = \"PW\"\n",
			`hosts.toml:1: registries.main.server: is required`},
		{"registry bad env name", "[registries.main]\nserver = \"r.example.com\"\nusername = \"ci\"\npassword_env = \"MY-PW\"\n",
			`hosts.toml:4: registries.main.password_env: "MY-PW" is not an environment variable name`},
		{"app unknown host", hostsOK + "[apps.api]\nhosts = [\"web\", \"db\"]\npath = \"/srv/api\"\n",
			`hosts.toml:9: apps.api.hosts: unknown host or group "db"`},
		{"app without hosts", hostsOK + "[apps.api]\npath = \"/srv/api\"\n",
			`hosts.toml:8: apps.api.hosts: is required`},
		{"app relative path", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"srv/api\"\n",
			`hosts.toml:10: apps.api.path: "srv/api" must be an absolute path`},
		{"app path with dotdot", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/../etc\"\n",
			`hosts.toml:10: apps.api.path: "/srv/../etc" must not contain ..`},
		{"app path not clean", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api/\"\n",
			`hosts.toml:10: apps.api.path: "/srv/api/" must be a clean path (write "/srv/api")`},
		{"app path root", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/\"\n",
			`hosts.toml:10: apps.api.path: must not be /`},
		{"two apps one path", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api2]\nhosts = [\"web2\"]\npath = \"/srv/api\"\n",
			`hosts.toml:13: apps.api2.path: "/srv/api" is also the path of app "api" on host "web2"`},
		{"shared absolute", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nshared = [\"logs\", \"/etc\"]\n",
			`hosts.toml:11: apps.api.shared: "/etc" must be relative to the release`},
		{"shared dotdot", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nshared = [\"../x\"]\n",
			`hosts.toml:11: apps.api.shared: "../x" must not contain ..`},
		{"keep_releases too small", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nkeep_releases = 1\n",
			`hosts.toml:11: apps.api.keep_releases: must be at least 2`},
		{"keep_images too small", hostsOK + "[apps.shop]\nhosts = [\"web1\"]\npath = \"/srv/shop\"\nimage = \"r.example.com/shop\"\nservice = \"app\"\nkeep_images = 0\n",
			`hosts.toml:13: apps.shop.keep_images: must be at least 1`},
		{"image app without service", hostsOK + "[apps.shop]\nhosts = [\"web1\"]\npath = \"/srv/shop\"\nimage = \"r.example.com/shop\"\n",
			`hosts.toml:8: apps.shop.service: is required for image apps`},
		{"image key on source app", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nservice = \"app\"\n",
			`hosts.toml:11: apps.api.service: only for image apps (set image)`},
		{"source key on image app", hostsOK + "[apps.shop]\nhosts = [\"web1\"]\npath = \"/srv/shop\"\nimage = \"r.example.com/shop\"\nservice = \"app\"\nkeep_releases = 3\n",
			`hosts.toml:13: apps.shop.keep_releases: only for source apps (remove image)`},
		{"supervisor url scheme", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nsupervisor.url = \"tcp://127.0.0.1:9001\"\nsupervisor.programs = [\"api\"]\n",
			`hosts.toml:11: apps.api.supervisor.url: "tcp://127.0.0.1:9001" must be "unix:///path/to/socket" or "http://host:port"`},
		{"supervisor relative socket", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nsupervisor.url = \"unix://run/s.sock\"\nsupervisor.programs = [\"api\"]\n",
			`hosts.toml:11: apps.api.supervisor.url: "unix://run/s.sock" must be unix:///absolute/path/to/socket`},
		{"supervisor bad program", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nsupervisor.url = \"http://127.0.0.1:9001\"\nsupervisor.programs = [\"api:*:x\"]\n",
			`hosts.toml:12: apps.api.supervisor.programs: invalid program "api:*:x" (write "name", "group:name" or "group:*")`},
		{"supervisor not a table", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nsupervisor = \"unix:///run/s.sock\"\n",
			`hosts.toml:11: apps.api.supervisor: must be a table, not a string`},
		{"check http not http", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\ncheck.http = \"ftp://127.0.0.1/\"\n",
			`hosts.toml:11: apps.api.check.http: "ftp://127.0.0.1/" must be an http:// or https:// URL with a host`},
		{"check port out of range", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\ncheck.ports = [8088, 0]\n",
			`hosts.toml:11: apps.api.check.ports: item 2: port 0 is not between 1 and 65535`},
		{"batch zero percent", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nrollout.batch = \"0%\"\n",
			`hosts.toml:11: apps.api.rollout.batch: must be a count such as 2 or a percentage from 1% to 100%, not "0%"`},
		{"batch words", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nrollout.batch = \"abc\"\n",
			`hosts.toml:11: apps.api.rollout.batch: must be a count such as 2 or a percentage from 1% to 100%, not "abc"`},
		{"batch over 100 percent", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nrollout.batch = \"150%\"\n",
			`hosts.toml:11: apps.api.rollout.batch: must be a count such as 2 or a percentage from 1% to 100%, not "150%"`},
		{"batch zero count", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nrollout.batch = 0\n",
			`hosts.toml:11: apps.api.rollout.batch: must be a count such as 2 or a percentage from 1% to 100%, not 0`},
		{"parallel zero", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\n[apps.api.rollout]\nparallel = 0\n",
			`hosts.toml:12: apps.api.rollout.parallel: must be at least 1`},
		{"max_fail negative", hostsOK + "[apps.api]\nhosts = [\"web\"]\npath = \"/srv/api\"\nrollout = { max_fail = -1 }\n",
			`hosts.toml:11: apps.api.rollout.max_fail: must not be negative`},
		{"schedule without name", hostsOK + "[[schedules]]\ncron = \"@daily\"\njob = \"prune\"\n",
			`hosts.toml:8: schedules[0].name: is required`},
		{"schedule duplicate name", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"@daily\"\njob = \"prune\"\n\n[[schedules]]\nname = \"p\"\ncron = \"@hourly\"\njob = \"check\"\n",
			`hosts.toml:14: schedules[1].name: duplicate schedule name "p" (also schedules[0])`},
		{"schedule unknown job", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"@daily\"\njob = \"reboot\"\n",
			`hosts.toml:11: schedules[0].job: unknown job "reboot" (want prune, check, deploy or exec)`},
		{"schedule bad cron", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"0 3 * *\"\njob = \"prune\"\n",
			`hosts.toml:10: schedules[0].cron: invalid cron spec "0 3 * *": expected 5 to 6 fields, found 4: [0 3 * *]`},
		{"schedule time zone only", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"CRON_TZ=UTC\"\njob = \"prune\"\n",
			`hosts.toml:10: schedules[0].cron: invalid cron spec "CRON_TZ=UTC": the time zone must be followed by a space and a schedule`},
		{"schedule unknown time zone", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"TZ=Mars/Olympus 0 3 * * *\"\njob = \"prune\"\n",
			`hosts.toml:10: schedules[0].cron: invalid cron spec "TZ=Mars/Olympus 0 3 * * *": provided bad location Mars/Olympus: unknown time zone Mars/Olympus`},
		{"schedule deploy without app", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"@daily\"\njob = \"deploy\"\n",
			`hosts.toml:8: schedules[0].app: is required for deploy jobs`},
		{"schedule exec without command", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"@daily\"\njob = \"exec\"\n",
			`hosts.toml:8: schedules[0].command: is required for exec jobs`},
		{"schedule exec command as string", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"@daily\"\njob = \"exec\"\ncommand = \"uptime\"\n",
			`hosts.toml:12: schedules[0].command: must be an array of strings, not a string`},
		{"schedule unknown group", hostsOK + "[[schedules]]\nname = \"p\"\ncron = \"@daily\"\njob = \"check\"\nhosts = [\"db\"]\n",
			`hosts.toml:12: schedules[0].hosts: unknown host or group "db"`},
		{"schedules not an array", hostsOK + "[schedules]\nname = \"p\"\n",
			`hosts.toml:8: schedules: must be an array of tables ([[schedules]]), not a table`},
		{"tilde user path", "[defaults]\nknown_hosts = \"~bob/.ssh/known_hosts\"\n" + hostsOK,
			`hosts.toml:2: defaults.known_hosts: "~bob/.ssh/known_hosts": only ~/ is expanded, not ~user/`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Options{Home: "/home/test"}.Parse("hosts.toml", []byte(tc.toml))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tc.want)
			}
			var ie *Error
			if !errors.As(err, &ie) {
				t.Errorf("error %T is not an *Error", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}
