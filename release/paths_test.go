package release

import (
	"testing"
	"time"
)

func TestNewReleaseID(t *testing.T) {
	at := time.Date(2026, 11, 22, 11, 15, 0, 999, time.FixedZone("CET", 3600))
	tests := []struct {
		name, sha, want string
	}{
		{name: "no git", want: "20261122T101500Z"},
		{name: "short sha", sha: "abc1234", want: "20261122T101500Z-abc1234"},
		{name: "upper case is lowered", sha: "ABC1234", want: "20261122T101500Z-abc1234"},
		{name: "not hex is dropped", sha: "abc; rm -rf /", want: "20261122T101500Z"},
		{name: "too short is dropped", sha: "abc", want: "20261122T101500Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NewReleaseID(at, tc.sha)
			if got != tc.want {
				t.Errorf("NewReleaseID = %q, want %q", got, tc.want)
			}
			if !ValidReleaseID(got) {
				t.Errorf("ValidReleaseID(%q) = false", got)
			}
		})
	}
}

func TestValidReleaseID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"timestamp", "20261122T101500Z", true},
		{"with sha", "20261122T101500Z-abc1234", true},
		{"full sha", "20261122T101500Z-0123456789abcdef0123456789abcdef01234567", true},
		{"empty", "", false},
		{"no Z", "20261122T101500", false},
		{"lower t", "20261122t101500Z", false},
		{"month 13", "20261322T101500Z", false},
		{"hour 24", "20261122T241500Z", false},
		{"upper sha", "20261122T101500Z-ABC1234", false},
		{"sha too long", "20261122T101500Z-0123456789abcdef0123456789abcdef012345678", false},
		{"dash only", "20261122T101500Z-", false},
		{"traversal", "../20261122T101500Z", false},
		{"slash", "20261122T101500Z/x", false},
		{"trailing newline", "20261122T101500Z\n", false},
		{"leading space", " 20261122T101500Z", false},
		{"current", "current", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidReleaseID(tc.id); got != tc.want {
				t.Errorf("ValidReleaseID(%q) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

func TestLayout_Paths(t *testing.T) {
	l := Layout{Path: "/srv/api"}
	id := "20261122T101500Z"
	tests := []struct {
		name, got, want string
	}{
		{"releases", l.Releases(), "/srv/api/releases"},
		{"release", l.Release(id), "/srv/api/releases/20261122T101500Z"},
		{"release link", l.ReleaseLink(id), "releases/20261122T101500Z"},
		{"current", l.Current(), "/srv/api/current"},
		{"shared", l.Shared(), "/srv/api/shared"},
		{"skiff dir", l.SkiffDir(), "/srv/api/.skiff"},
		{"lock", l.LockDir(), "/srv/api/.skiff/lock"},
		{"history", l.History(), "/srv/api/.skiff/history.jsonl"},
		{"manifests", l.Manifests(), "/srv/api/.skiff/manifests"},
		{"manifest", l.Manifest(id), "/srv/api/.skiff/manifests/20261122T101500Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestLayout_Validate(t *testing.T) {
	tests := []struct {
		name, path, wantErr string
	}{
		{name: "absolute", path: "/srv/api"},
		{name: "relative", path: "srv/api", wantErr: `target path "srv/api" is not absolute`},
		{name: "empty", path: "", wantErr: `target path "" is not absolute`},
		{name: "unclean", path: "/srv/../etc", wantErr: `target path "/srv/../etc" is not clean (want "/etc")`},
		{name: "trailing slash", path: "/srv/api/", wantErr: `target path "/srv/api/" is not clean (want "/srv/api")`},
		{name: "root", path: "/", wantErr: "target path must not be the root directory"},
		{name: "newline", path: "/srv/a\nb", wantErr: `target path "/srv/a\nb" contains a newline or NUL byte`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Layout{Path: tc.path}.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
