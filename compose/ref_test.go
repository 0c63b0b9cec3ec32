package compose

import (
	"strings"
	"testing"
)

func TestParseReference_Valid(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Reference
	}{
		{name: "hub short", in: "nginx", want: Reference{Repository: "nginx"}},
		{name: "hub with tag", in: "library/nginx:1.25-alpine", want: Reference{Repository: "library/nginx", Tag: "1.25-alpine"}},
		{name: "registry with port", in: "127.0.0.1:5000/shop/app:v2", want: Reference{Repository: "127.0.0.1:5000/shop/app", Tag: "v2"}},
		{name: "registry domain", in: "registry.example.com/shop/app", want: Reference{Repository: "registry.example.com/shop/app"}},
		{name: "digest", in: "registry.example.com/shop/app@sha256:" + strings.Repeat("ab", 32),
			want: Reference{Repository: "registry.example.com/shop/app", Digest: "sha256:" + strings.Repeat("ab", 32)}},
		{name: "tag and digest", in: "shop/app:v1@sha256:" + strings.Repeat("0", 64),
			want: Reference{Repository: "shop/app", Tag: "v1", Digest: "sha256:" + strings.Repeat("0", 64)}},
		{name: "separators", in: "a__b.c-d/e--f:T_1.x-y", want: Reference{Repository: "a__b.c-d/e--f", Tag: "T_1.x-y"}},
		{name: "ci sha tag", in: "shop/app:3f2a9c0d1e", want: Reference{Repository: "shop/app", Tag: "3f2a9c0d1e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseReference(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestParseReference_RejectsHostileInput(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{name: "empty", in: ""},
		{name: "space", in: "shop/app:a b"},
		{name: "command substitution", in: "shop/app:$(x)"},
		{name: "backquote", in: "shop/`id`"},
		{name: "single quote", in: "shop/app:'"},
		{name: "leading dash", in: "-shop/app"},
		{name: "option as tag", in: "shop/app:-rf"},
		{name: "upper case path", in: "shop/App"},
		{name: "semicolon", in: "shop/app;rm"},
		{name: "newline", in: "shop/app\n:v1"},
		{name: "bad digest", in: "shop/app@sha256:abc"},
		{name: "md5 digest", in: "shop/app@md5:" + strings.Repeat("a", 32)},
		{name: "double colon", in: "shop/app:v1:v2"},
		{name: "trailing slash", in: "shop/app/"},
		{name: "too long tag", in: "shop/app:" + strings.Repeat("t", 129)},
		{name: "too long name", in: strings.Repeat("a", 256)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ref, err := ParseReference(tc.in); err == nil {
				t.Fatalf("ParseReference(%q) = %+v, want an error", tc.in, ref)
			}
		})
	}
}

func TestValidators_RejectHostileNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{name: "service", check: ValidateService, good: []string{"app", "web-1", "a.b_c", "1st"},
			bad: []string{"", "a b", "$(x)", "'", "-rm", "a;b", ".hidden", "é"}},
		{name: "project", check: ValidateProject, good: []string{"shop", "img-1a2b", "a_b"},
			bad: []string{"", "Shop", "a b", "-p", "$(x)", "'", "a.b"}},
		{name: "server", check: ValidateServer, good: []string{"registry.example.com", "127.0.0.1:5000", "localhost:5000"},
			bad: []string{"", "-server", "a b", "https://r.example.com", "r.example.com/path", "$(x)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.good {
				if err := tc.check(s); err != nil {
					t.Errorf("%q: %v", s, err)
				}
			}
			for _, s := range tc.bad {
				if err := tc.check(s); err == nil {
					t.Errorf("%q accepted", s)
				}
			}
		})
	}
}

func TestProjectName_LikeCompose(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"/srv/shop", "shop"},
		{"/srv/My.Shop_2", "myshop_2"},
		{"/srv/-x", "x"},
		{"/srv/...", "skiff"},
		{"/srv/img-1a2b3c", "img-1a2b3c"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			got := ProjectName(tc.dir)
			if got != tc.want {
				t.Fatalf("ProjectName(%q) = %q, want %q", tc.dir, got, tc.want)
			}
			if err := ValidateProject(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSameRepository_DockerHubSpellings(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"nginx", "docker.io/library/nginx", true},
		{"user/app", "docker.io/user/app", true},
		{"user/app", "index.docker.io/user/app", true},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app", true},
		{"127.0.0.1:5000/app", "127.0.0.1:5001/app", false},
		{"registry.example.com/app", "app", false},
	} {
		t.Run(tc.a+" vs "+tc.b, func(t *testing.T) {
			if got := SameRepository(tc.a, tc.b); got != tc.same {
				t.Fatalf("SameRepository = %v, want %v", got, tc.same)
			}
		})
	}
}
