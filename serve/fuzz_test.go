package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffdeploy/skiff/inventory"
)

// FuzzParseHooks feeds arbitrary bodies to every kind's parser, as a verified sender could: none may panic,
// and an event that deploys must name something to deploy.
func FuzzParseHooks(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"tag":"v1"}`))
	f.Add([]byte(`{"revision":"main"}`))
	headers := []http.Header{
		{"X-Gitlab-Event": {"Push Hook"}}, {"X-Gitlab-Event": {"Tag Push Hook"}}, {"X-Gitlab-Event": {"Pipeline Hook"}},
		{"X-Github-Event": {"push"}}, {"X-Github-Event": {"release"}}, {"X-Github-Event": {"workflow_run"}}, {},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for kind, k := range hookKinds {
			for _, app := range []*inventory.App{imageApp, sourceApp} {
				for _, tmpl := range []string{"", "{{.Ref}}-{{.ShortSHA}}"} {
					tr := &inventory.Trigger{Kind: kind, Ref: "*", Tag: tmpl}
					for _, h := range headers {
						ev, err := k.parse(h, body, tr, app)
						if err != nil || ev.Ignored != "" {
							continue
						}
						if ev.Delivery == "" || app.Kind == inventory.KindImage && !validTag(ev.Tag) || app.Kind == inventory.KindSource && ev.SHA == "" && ev.Ref == "" {
							t.Fatalf("%s %v: deployable event %+v", kind, h, ev)
						}
					}
				}
			}
		}
	})
}
