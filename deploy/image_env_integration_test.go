package deploy

import (
	"context"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/inventory"
)

// TestDeployImage_EnvFileRecreatesContainer: an image app's [env] reaches the container through compose's
// env_file; the same values leave the container alone, a changed value recreates it with the new one. A
// container that crashes then leaves its last lines in the outcome's LogTail.
func TestDeployImage_EnvFileRecreatesContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	fx := newImageFixture(t)
	a := fx.newImageApp(t, nil, "", composeOptions{})
	a.app.Env = &inventory.EnvFile{File: ".env", Values: map[string]string{"MODE": "one"}}

	containerEnv := func(id string) string {
		out, err := exec.Command("docker", "inspect", "--format", "{{json .Config.Env}}", id).CombinedOutput()
		if err != nil {
			t.Fatalf("docker inspect %s: %v: %s", id, err, out)
		}
		return string(out)
	}
	first := a.mustDeploy(t, "v1")
	fi, err := os.Stat(path.Join(a.app.Path, "shared", ".env"))
	if !first.EnvWritten || err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("first deploy: env_written %v, %v %v", first.EnvWritten, err, fi)
	}
	id := first.Image.Containers[0].ID
	if env := containerEnv(id); !strings.Contains(env, `"MODE=one"`) {
		t.Fatalf("container env %s, want MODE=one", env)
	}

	same := a.mustDeploy(t, "v1")
	if same.EnvWritten || same.Image.Containers[0].ID != id {
		t.Errorf("same values: env_written %v, container %s -> %s; want it untouched", same.EnvWritten, id, same.Image.Containers[0].ID)
	}

	a.app.Env.Values["MODE"] = "two"
	changed := a.mustDeploy(t, "v1")
	if !changed.EnvWritten || changed.Image.Containers[0].ID == id {
		t.Fatalf("changed value: env_written %v, container %s -> %s; want it recreated", changed.EnvWritten, id, changed.Image.Containers[0].ID)
	}
	if env := containerEnv(changed.Image.Containers[0].ID); !strings.Contains(env, `"MODE=two"`) {
		t.Errorf("container env %s, want MODE=two", env)
	}

	// skiff logs of an image app: docker logs of the service's container, and -f ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := AppLogs(ctx, a.conn, a.app, LogOptions{Lines: 10, Follow: true}, func(string) {}); err != nil {
		t.Errorf("logs -f of the image app: %v", err)
	}

	// A container that exits at once: the outcome carries its last output lines.
	crash := a.deploy(t, "crash")
	if crash.Err == nil || !crash.RolledBack || !strings.Contains(strings.Join(crash.LogTail, "\n"), "boom") {
		t.Errorf("crashing image: err %v, rolled back %v, log tail %q; want the container's output", crash.Err, crash.RolledBack, crash.LogTail)
	}
}
