package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/internal/testenv"
)

// BenchmarkImageRedeploy times an image redeploy of one service to a new tag with skiff against the same
// steps typed by hand, one system `ssh` per step (login, pull, pin the tag in an override, up, check),
// each on its own app on the same host. Every iteration switches both apps to the other of two tags, whose
// images are already on the host after the warm-up, so the pull is a registry check like most CI deploys.
// Run with -benchtime=5x: one iteration takes seconds. It reports both times and skiff/hand.
func BenchmarkImageRedeploy(b *testing.B) {
	fx := newImageFixture(b)
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		testenv.SkipOrFail(b, "ssh client not installed")
	}
	a := fx.newImageApp(b, nil, "", composeOptions{})
	hand := fx.newImageApp(b, nil, "", composeOptions{})
	byHand := func(tag string) {
		for _, step := range handSteps(fx, hand, tag) {
			cmd := exec.Command(sshBin, append(hand.host.SSHArgs(), step.cmd)...)
			cmd.Stdin = strings.NewReader(step.stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("by hand: %s: %v\n%s", step.cmd, err, out)
			}
		}
	}
	tags := []string{"bench1", "bench2"}
	for _, tag := range tags {
		a.mustDeploy(b, tag)
		byHand(tag)
	}
	var skiffTime, handTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tag := tags[i%2]
		start := time.Now()
		if out := a.deploy(b, tag); out.Err != nil {
			b.Fatalf("skiff deploy %s: %v\n%s", tag, out.Err, a.logs)
		}
		skiffTime += time.Since(start)
		start = time.Now()
		byHand(tag)
		handTime += time.Since(start)
	}
	b.StopTimer()
	if got := hand.version(b); got != tags[(b.N-1)%2] {
		b.Fatalf("by-hand app serves %q", got)
	}
	n := float64(b.N)
	b.ReportMetric(float64(skiffTime.Milliseconds())/n, "skiff-ms/op")
	b.ReportMetric(float64(handTime.Milliseconds())/n, "hand-ms/op")
	b.ReportMetric(float64(skiffTime)/float64(handTime), "skiff/hand")
}

// handStep is one command an operator would type over ssh, with what they would pipe into it.
type handStep struct{ cmd, stdin string }

// handSteps are the steps of the by-hand redeploy of app to tag, doing what skiff does minus its lock,
// history, digest pinning and container checks: upload the compose file, log in, pull, pin the tag in an
// override, bring the service up, and poll its port with curl until it answers.
func handSteps(fx *imageFixture, app *imageApp, tag string) []handStep {
	dir := app.app.Path
	cfg := path.Join(dir, ".docker")
	ref := fx.repo + ":" + tag
	override := fmt.Sprintf("services:\n  app:\n    image: %s\n", ref)
	composeYAML, _ := os.ReadFile(app.app.ComposeFile)
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	return []handStep{
		{cmd: fmt.Sprintf("mkdir -p %s && cat > %s/compose.yaml", q(dir), q(dir)), stdin: string(composeYAML)},
		{cmd: fmt.Sprintf("docker --config %s login -u %s --password-stdin %s", q(cfg), q(fx.reg.Username), q(fx.reg.Addr)), stdin: fx.reg.Password},
		{cmd: fmt.Sprintf("docker --config %s pull %s", q(cfg), q(ref))},
		{cmd: fmt.Sprintf("cat > %s/override.yaml", q(dir)), stdin: override},
		{cmd: fmt.Sprintf("cd %s && docker-compose -p %s -f compose.yaml -f override.yaml up -d --no-deps app", q(dir), q(compose.ProjectName(dir)))},
		{cmd: fmt.Sprintf("for i in 1 2 3 4 5 6 7 8 9 10; do curl -fsS http://127.0.0.1:%d/VERSION && exit 0; sleep 0.2; done; exit 1", app.port)},
	}
}
