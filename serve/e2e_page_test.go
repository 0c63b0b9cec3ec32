package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// chromiumBinary is where Debian's chromium-headless-shell package installs the browser.
const chromiumBinary = "/usr/bin/chromium-headless-shell"

// TestServe_StatusPageInBrowser opens the status page in a real headless Chromium: it signs in with the
// token form, lists the apps with their live releases, and shows a running job's log growing without a
// reload. With SKIFF_UPDATE_SCREENSHOT=1 it keeps its screenshot in
// docs/serve.png for the README.
func TestServe_StatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	if _, err := os.Stat(chromiumBinary); err != nil {
		testenv.SkipOrFail(t, "no "+chromiumBinary+" (apt-get install chromium-headless-shell)")
	}
	apps := newSourceApps(t, map[string]string{"VERSION": "v1\n", "app.py": "print('api')\n"}, "", map[string]string{
		"web": `hooks.before_switch = ["for i in 1 2 3 4 5 6 7 8; do echo \"build step $i of 8\"; sleep 1; done"]` + "\n",
	}, "api", "worker", "web")
	hs, late := listen(t)
	s := start(t, hs, late, apps.inv, 2, map[string]string{"HOOK": hookSecret})
	send := func(app, id string) uint64 { return apps.send(t, s.url, app, id) }
	for _, app := range []string{"api", "worker"} {
		if j := s.wait(send(app, app+"-1"), 2*time.Minute); j.Status != "ok" {
			t.Fatalf("deploy %s: %s %s", app, j.Status, j.Error)
		}
	}
	release := ""
	for _, a := range s.appsRead() {
		if a.App == "api" && len(a.Hosts) == 1 {
			release = a.Hosts[0].Release
		}
	}
	if release == "" {
		t.Fatalf("api has no live release: %+v", s.appsRead())
	}
	running := send("web", "web-1")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumBinary), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1480, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer tcancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), apiToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("apps")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	appsText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("apps")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"api", "worker", "web", release} {
		if !strings.Contains(appsText, want) {
			t.Fatalf("apps table does not show %q:\n%s", want, appsText)
		}
	}
	jobOnPage, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("log"), "data-job"))
	if err != nil {
		t.Fatal(err)
	}
	if jobOnPage.Value != fmt.Sprint(running) {
		t.Fatalf("the page shows job %q, want the running job %d", jobOnPage.Value, running)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	// The log grows on the page while the job runs, without a reload.
	deadline := time.Now().Add(90 * time.Second)
	logText := ""
	for !strings.Contains(logText, "build step 6 of 8") {
		if time.Now().After(deadline) {
			t.Fatalf("the running job's log did not grow on the page:\n%s", logText)
		}
		time.Sleep(200 * time.Millisecond)
		if logText, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("log"))); err != nil {
			t.Fatal(err)
		}
	}
	notReloaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__notReloaded === true`))
	if err != nil || !notReloaded {
		t.Fatalf("the page was reloaded (%v)", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(shot))
	}
	// SKIFF_UPDATE_SCREENSHOT=1 keeps it as the README's picture; otherwise a test run leaves the tree clean.
	out := filepath.Join(t.TempDir(), "serve.png")
	if os.Getenv("SKIFF_UPDATE_SCREENSHOT") != "" {
		out = filepath.Join("..", "docs", "serve.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if j := s.wait(running, 2*time.Minute); j.Status != "ok" {
		t.Fatalf("web job: %s %s", j.Status, j.Error)
	}
}
