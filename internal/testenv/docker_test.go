package testenv

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestBuildImage_PushPullRemove(t *testing.T) {
	RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := StartRegistry(ctx, RegistryOptions{Dir: t.TempDir(), Username: "ci", Password: "pw"})
	if errors.Is(err, ErrMissingTool) {
		SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	prefix := r.Addr + "/"
	t.Cleanup(func() { RemoveImages(context.Background(), prefix) })

	ref := r.Repo("testenv/web:v1")
	id, err := BuildImage(ctx, ref, ImageSpec{Files: map[string]string{"/www/VERSION": "v1\n"}, Cmd: []string{"/bin/busybox", "cat", "/www/VERSION"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("image id %q", id)
	}
	digest, err := r.Push(ctx, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
		t.Fatalf("digest %q", digest)
	}
	if err := exec.CommandContext(ctx, "docker", "image", "inspect", ref).Run(); err == nil {
		t.Fatal("the pushed image is still local after Push(removeLocal)")
	}
	if err := r.Pull(ctx, ref); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", ref).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "v1" {
		t.Fatalf("docker run: %v: %q", err, out)
	}
	if err := RemoveImages(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	if err := exec.CommandContext(ctx, "docker", "image", "inspect", ref).Run(); err == nil {
		t.Fatal("RemoveImages left the image")
	}
}

func TestStartHostWithout_HidesToolsAndAllowsDocker(t *testing.T) {
	RequireDocker(t)
	e := Shared(t)
	e.AllowDocker(t)
	h := e.StartHostWithout(t, "nocompose", "docker-compose")
	kh := trustOnly(t, h)
	for _, tc := range []struct {
		name, cmd string
		ok        bool
		out       string
	}{
		{name: "compose hidden", cmd: "command -v docker-compose", ok: false},
		{name: "docker usable", cmd: "docker version --format '{{.Server.Version}}'", ok: true},
		{name: "other tools found", cmd: "command -v mkdir cat", ok: true, out: "/mkdir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSSH(t, h, kh, tc.cmd)
			if (err == nil) != tc.ok || !strings.Contains(out, tc.out) {
				t.Fatalf("%s: %v: %q", tc.cmd, err, out)
			}
		})
	}
}

func TestImageTar_RejectsRelativePaths(t *testing.T) {
	if _, err := imageTar(ImageSpec{Files: map[string]string{"www/x": ""}}); err == nil {
		t.Fatal("accepted a relative path")
	}
}
