package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestPermuteArgs_FlagsAfterPositionals(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	app.Commands = append(app.Commands, testDeployCommand())
	cases := []struct {
		name string
		in   string
		want string
		err  string
	}{
		{name: "no args", in: "skiff", want: "skiff"},
		{name: "global before command", in: "skiff --json check", want: "skiff --json check"},
		{name: "global after command", in: "skiff check --json", want: "skiff --json check"},
		{name: "global value after command", in: "skiff check --hosts web1,web2", want: "skiff --hosts web1,web2 check"},
		{name: "short global with value", in: "skiff -i inv.toml check", want: "skiff -i inv.toml check"},
		{name: "command flag after positional", in: "skiff deploy-test api --tag v2", want: "skiff deploy-test --tag v2 -- api"},
		{name: "command flag with equals", in: "skiff deploy-test api --tag=v2 --json", want: "skiff --json deploy-test --tag=v2 -- api"},
		{name: "bool command flag", in: "skiff deploy-test api --force", want: "skiff deploy-test --force -- api"},
		{name: "exec keeps words after double dash", in: "skiff exec --hosts a -- ls -la --json", want: "skiff --hosts a exec -- ls -la --json"},
		{name: "unknown flag after positional", in: "skiff deploy-test api --tga v2", err: "unknown flag --tga for deploy-test"},
		{name: "unknown global flag", in: "skiff --nope check", err: "unknown flag --nope"},
		{name: "unknown command", in: "skiff frobnicate --x", err: `unknown command "frobnicate"`},
		{name: "unknown subcommand", in: "skiff lock frob api", err: `unknown command "frob" for lock`},
		{name: "help passes through", in: "skiff help deploy", want: "skiff help deploy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := permuteArgs(app, strings.Fields(tc.in))
			if tc.err != "" {
				if want := tc.err + "\n" + usageLine; err == nil || err.Error() != want {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Fields(tc.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}
