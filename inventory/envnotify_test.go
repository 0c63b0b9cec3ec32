package inventory

import (
	"reflect"
	"testing"
)

func TestParse_EnvAndNotify(t *testing.T) {
	inv, err := Parse("hosts.toml", []byte(hostsOK+`
[apps.api]
hosts = ["web"]
path = "/srv/api"
[apps.api.env]
values = { APP_MODE = "prod", Z = "" }
secret_env = ["DB_PASSWORD"]

[apps.plain]
hosts = ["web1"]
path = "/srv/plain"

[[notify]]
url = "https://hooks.example.com/skiff"
secret_env = "NOTIFY_SECRET"
on = ["deploy", "failure"]

[[notify]]
command = ["mail", "-s", "skiff", "ops@example.com"]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &EnvFile{File: ".env", Values: map[string]string{"APP_MODE": "prod", "Z": ""}, SecretEnv: []string{"DB_PASSWORD"}}
	if got := inv.Apps["api"].Env; !reflect.DeepEqual(got, want) {
		t.Errorf("env = %+v, want %+v", got, want)
	}
	if got := inv.Apps["api"].Env.Keys(); !reflect.DeepEqual(got, []string{"APP_MODE", "DB_PASSWORD", "Z"}) {
		t.Errorf("keys = %v", got)
	}
	if inv.Apps["plain"].Env != nil {
		t.Errorf("an app without [env] has %+v", inv.Apps["plain"].Env)
	}
	if len(inv.Notify) != 2 || inv.Notify[0].SecretEnv != "NOTIFY_SECRET" || !reflect.DeepEqual(inv.Notify[0].On, []string{"deploy", "failure"}) {
		t.Errorf("notify[0] = %+v", inv.Notify[0])
	}
	if !reflect.DeepEqual(inv.Notify[1].On, NotifyEvents) {
		t.Errorf("notify[1].on defaults to %v, want every event", inv.Notify[1].On)
	}
}
