package remote

import (
	"os/exec"
	"testing"
)

func TestQuote_Hostile(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: "''"},
		{name: "safe word", in: "release-20261122T101500Z", want: "release-20261122T101500Z"},
		{name: "safe punctuation", in: "a%b+c,d-e.f/g:h=i@j_k", want: "a%b+c,d-e.f/g:h=i@j_k"},
		{name: "space", in: "two words", want: "'two words'"},
		{name: "single quote", in: "it's", want: `'it'\''s'`},
		{name: "only quotes", in: "''", want: `''\'''\'''`},
		{name: "double quote", in: `say "hi"`, want: `'say "hi"'`},
		{name: "command substitution", in: "$(rm -rf /)", want: "'$(rm -rf /)'"},
		{name: "variable", in: "$HOME", want: "'$HOME'"},
		{name: "backticks", in: "`id`", want: "'`id`'"},
		{name: "newline", in: "a\nb\n", want: "'a\nb\n'"},
		{name: "glob", in: "*", want: "'*'"},
		{name: "leading dash", in: "-rf", want: "-rf"},
		{name: "unicode", in: "héllo wörld ☃", want: "'héllo wörld ☃'"},
		{name: "backslash", in: `a\b\`, want: `'a\b\'`},
		{name: "semicolon and pipe", in: "a; b | c && d", want: "'a; b | c && d'"},
		{name: "tilde", in: "~/x", want: "'~/x'"},
		{name: "tab and cr", in: "a\tb\rc", want: "'a\tb\rc'"},
		{name: "hash", in: "#comment", want: "'#comment'"},
		{name: "braces and brackets", in: "{a,b}[0]", want: "'{a,b}[0]'"},
		{name: "redirections", in: "<in >out 2>&1", want: "'<in >out 2>&1'"},
		{name: "bang", in: "!!", want: "'!!'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Quote(tc.in)
			if got != tc.want {
				t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
			}
			out, err := exec.Command("sh", "-c", "printf %s "+got).Output()
			if err != nil {
				t.Fatalf("sh: %v", err)
			}
			if string(out) != tc.in {
				t.Errorf("sh read %q back as %q", got, out)
			}
		})
	}
}

func TestJoin_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv []string
		want string
	}{
		{name: "plain", argv: []string{"ls", "-la", "/srv/api"}, want: "ls -la /srv/api"},
		{name: "empty argument", argv: []string{"printf", "%s|", ""}, want: "printf '%s|' ''"},
		{name: "hostile arguments", argv: []string{"printf", "[%s]", "a b", "it's", "$(id)"}, want: `printf '[%s]' 'a b' 'it'\''s' '$(id)'`},
		{name: "assignment-like program", argv: []string{"A=b", "c"}, want: "'A=b' c"},
		{name: "assignment-like argument", argv: []string{"env", "A=b"}, want: "env A=b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Join(tc.argv); got != tc.want {
				t.Errorf("Join(%q) = %q, want %q", tc.argv, got, tc.want)
			}
		})
	}
}

func TestJoin_ShellSeesTheSameArguments(t *testing.T) {
	args := []string{"", "a b", "it's", `"`, "$(id)", "`id`", "x\ny", "*", "-n", "héllo", `\`, "A=b"}
	// printf prints each argument between brackets; the shell must pass them unchanged.
	line := Join(append([]string{"printf", "[%s]"}, args...))
	out, err := exec.Command("sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("sh -c %s: %v", line, err)
	}
	want := ""
	for _, a := range args {
		want += "[" + a + "]"
	}
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
