package compose

import (
	"strings"
	"testing"
)

func TestPruneCommands_Argv(t *testing.T) {
	id := "sha256:" + strings.Repeat("a", 64)
	must := func(argv []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return argv
	}
	for _, tc := range []struct {
		name string
		got  []string
		want string
	}{
		{"dangling images", DanglingImages(), "docker|image|ls|--filter|dangling=true|--quiet|--no-trunc"},
		{"image sizes", must(ImageSizes([]string{id})), "docker|image|inspect|--format|{{.Id}} {{.Size}}|" + id},
		{"remove image", must(RemoveImage(id)), "docker|image|rm|" + id},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.got, "|"); got != tc.want {
				t.Fatalf("argv\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPruneCommands_RejectHostileInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"remove by name", func() error { _, err := RemoveImage("shop/app:v1"); return err }},
		{"remove option", func() error { _, err := RemoveImage("-f"); return err }},
		{"remove short id", func() error { _, err := RemoveImage("sha256:abc"); return err }},
		{"sizes of nothing", func() error { _, err := ImageSizes(nil); return err }},
		{"sizes substitution", func() error { _, err := ImageSizes([]string{"$(x)"}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err() == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseImageSizes(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	for _, tc := range []struct {
		name    string
		out     string
		want    map[string]int64
		wantErr bool
	}{
		{name: "two images", out: a + " 1982000\n" + b + " 0\n", want: map[string]int64{a: 1982000, b: 0}},
		{name: "empty", out: "", want: map[string]int64{}},
		{name: "human size", out: a + " 1.98MB\n", wantErr: true},
		{name: "negative", out: a + " -1\n", wantErr: true},
		{name: "bad id", out: "sha256:x 12\n", wantErr: true},
		{name: "extra field", out: a + " 12 13\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseImageSizes([]byte(tc.out))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestParseImageIDs(t *testing.T) {
	a := "sha256:" + strings.Repeat("a", 64)
	ids, err := ParseImageIDs([]byte(a + "\n\n" + a + "\n"))
	if err != nil || len(ids) != 2 {
		t.Fatalf("got %v, %v", ids, err)
	}
	if _, err := ParseImageIDs([]byte("abc\n")); err == nil {
		t.Fatal("accepted a short id")
	}
}
