package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// composeRunner lets compose.Detect run its probes over the host's connection.
type composeRunner struct{ c HostConn }

// Run runs argv on the host and returns its standard output. compose only probes with it (compose.Detect).
func (cr composeRunner) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	res, err := cr.c.Run(ctx, remote.Command{Argv: argv, Stdin: stdin, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// query runs a command that changes nothing (also in a dry run) and returns its standard output.
func (r *imageRun) query(ctx context.Context, argv []string) ([]byte, error) {
	res, err := r.c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// runCollect is hostRun.run that also returns the command's standard output.
func (r *imageRun) runCollect(ctx context.Context, cmd remote.Command) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = func(line string) { r.logf("%s", line); out.WriteString(line + "\n") }
	cmd.Stderr = func(line string) { r.logf("%s", line) }
	_, err := r.c.Run(ctx, cmd)
	return out.Bytes(), err
}

// detect finds the compose flavour on the host; it only reads, so it runs in a dry run too.
func (r *imageRun) detect(ctx context.Context) error {
	return r.startDetect(ctx)()
}

// startDetect starts detect in the background and returns the function that waits for it and records its
// step. Detecting docker-compose v1 costs a Python start-up, which a deploy hides behind its pull.
func (r *imageRun) startDetect(ctx context.Context) (wait func() error) {
	type result struct {
		tool compose.Tool
		err  error
		took time.Duration
	}
	ch := make(chan result, 1)
	go func() {
		start := time.Now()
		t, err := compose.Detect(ctx, composeRunner{r.c}, r.img.Compose)
		ch <- result{t, err, time.Since(start)}
	}()
	return func() error {
		res := <-ch
		r.out.Steps = append(r.out.Steps, StepTiming{Step: "compose", DurationMS: res.took.Milliseconds()})
		if res.err != nil {
			return fmt.Errorf("compose: %w", res.err)
		}
		r.tool = res.tool
		r.out.Image.Compose = r.tool.String()
		r.logf("using %s", r.tool)
		return nil
	}
}

// writeFileScript writes its standard input to $1 through a temporary name, so a reader never sees half a
// file, and makes sure the parent directory exists.
const writeFileScript = `set -e
mkdir -p "$(dirname "$1")"
t="$1.skiff-tmp"
cat > "$t"
chmod 644 "$t"
mv -f "$t" "$1"`

// prepareCompose uploads the app's compose file, or makes sure the host has one.
func (r *imageRun) prepareCompose(ctx context.Context) error {
	if r.img.ComposeYAML == nil {
		_, err := r.c.Run(ctx, r.composePresentCommand())
		var ee *remote.ExitError
		if errors.As(err, &ee) && ee.Status == 1 {
			return fmt.Errorf("no compose file %s on the host: set compose_file in the inventory to upload one", r.composeFile())
		}
		return err
	}
	return r.step("upload", func() error {
		_, err := r.c.Run(ctx, r.uploadCommand())
		return err
	})
}

// composePresentCommand fails with status 1 when the host has no compose file for the app.
func (r *imageRun) composePresentCommand() remote.Command {
	cmd := remote.Script(`[ -f "$1" ]`, r.composeFile())
	cmd.ReadOnly = true
	return cmd
}

// uploadCommand writes the app's compose file, which it carries on standard input.
func (r *imageRun) uploadCommand() remote.Command {
	cmd := remote.Script(writeFileScript, r.composeFile())
	cmd.Stdin = bytes.NewReader(r.img.ComposeYAML)
	return cmd
}

// pull logs in when the app names a registry, pulls the image, logs out again and reads the digest the
// image is known by in its repository. A dry run pulls nothing, so it returns no release.
func (r *imageRun) pull(ctx context.Context) (ImageRelease, error) {
	ref := r.img.Ref
	docker := compose.Docker{}
	if reg := r.img.Registry; reg != nil {
		docker.ConfigDir = r.dockerConfig()
		if err := r.step("login", func() error { return r.login(ctx, docker, reg.Server, reg.Username, reg.PasswordEnv) }); err != nil {
			return ImageRelease{}, err
		}
		defer r.logout(ctx, docker, reg.Server)
	}
	var rel ImageRelease
	err := r.step("pull", func() error {
		argv, err := docker.Pull(ref)
		if err != nil {
			return err
		}
		out, err := r.runCollect(ctx, remote.Command{Argv: argv})
		if err != nil {
			return err
		}
		return r.change("", "", func() (err error) { // a dry run pulled no image to read the digest of
			rel, err = r.pulled(ctx, ref, out)
			return err
		})
	})
	if err != nil {
		return ImageRelease{}, err
	}
	return rel, nil
}

// pulled is the release of the image pull pulled as ref, which printed out: the digest the image is known by
// in its repository.
func (r *imageRun) pulled(ctx context.Context, ref compose.Reference, out []byte) (ImageRelease, error) {
	argv, err := compose.InspectImage(ref)
	if err != nil {
		return ImageRelease{}, err
	}
	data, err := r.query(ctx, argv)
	if err != nil {
		return ImageRelease{}, fmt.Errorf("inspect pulled image: %w", err)
	}
	img, err := compose.ParseImage(data)
	if err != nil {
		return ImageRelease{}, err
	}
	want := compose.ParsePullDigest(out)
	if ref.Digest != "" {
		want = ref.Digest
	}
	digest, err := img.DigestFor(ref.Repository, want)
	if err != nil {
		return ImageRelease{}, err
	}
	return ImageRelease{
		ID:     release.NewReleaseID(time.Now(), strings.TrimPrefix(digest, "sha256:")[:12]),
		Image:  ref.Repository,
		Tag:    ref.Tag,
		Digest: digest,
	}, nil
}

// login logs in to the registry in skiff's own docker config directory. The password goes to docker on the
// session's standard input only: never on a command line, in the environment, a log line or an error.
func (r *imageRun) login(ctx context.Context, docker compose.Docker, server, user, passwordEnv string) error {
	argv, err := docker.Login(server, user)
	if err != nil {
		return err
	}
	var password string
	if passwordEnv != "" && r.opts.Secret != nil {
		password = r.opts.Secret(passwordEnv)
	}
	if password == "" {
		return fmt.Errorf("registry %s: the password variable %s is empty", server, passwordEnv)
	}
	if err := r.run(ctx, configDirCommand(docker.ConfigDir)); err != nil {
		return err
	}
	if err := r.run(ctx, remote.Command{Argv: argv, Stdin: strings.NewReader(password)}); err != nil {
		return fmt.Errorf("docker login to %s as %s: %w", server, user, err)
	}
	return nil
}

// configDirCommand creates skiff's docker config directory, readable by its owner only.
func configDirCommand(dir string) remote.Command {
	return remote.Script(`umask 077 && mkdir -p "$1"`, dir)
}

// logout removes the credentials login stored, whatever happened to the pull, and then the config file
// itself: a file that never outlives a run is one a reader of the target cannot mistake for live credentials.
func (r *imageRun) logout(ctx context.Context, docker compose.Docker, server string) {
	ctx = r.cleanupCtx(ctx)
	argv, err := docker.Logout(server)
	if err == nil {
		err = r.run(ctx, remote.Command{Argv: argv})
	}
	if err == nil {
		err = r.run(ctx, remote.Script(`rm -f "$1/config.json"`, docker.ConfigDir))
	}
	if err != nil {
		r.warn(fmt.Sprintf("docker logout from %s: %v", server, err))
	}
}

// removeStaleCredentials removes a docker config that a killed run left behind, credentials and all, before
// anything else of the run happens, and says so.
func (r *imageRun) removeStaleCredentials(ctx context.Context) error {
	cfg := r.dockerConfig() + "/config.json"
	res, err := r.c.Run(ctx, remote.Script(`[ -e "$1" ] || [ -L "$1" ] || exit 0; rm -f "$1" && echo removed`, cfg))
	if err != nil {
		return fmt.Errorf("remove stale docker credentials %s: %w", cfg, err)
	}
	if strings.TrimSpace(string(res.Stdout)) == "removed" {
		r.warn(fmt.Sprintf("removed %s, docker credentials left by an earlier run that was killed", cfg))
	}
	return nil
}

// pinScript writes the override file from standard input ($1) and then either saves compose.yaml ($2) as
// the snapshot of the release ($3) or, going back to a release, restores compose.yaml from its snapshot.
const pinScript = `set -e
t="$1.skiff-tmp"
cat > "$t"
chmod 644 "$t"
mv -f "$t" "$1"
case "$4" in
save)
  mkdir -p "$(dirname "$3")"
  cp -f "$2" "$3.tmp"
  mv -f "$3.tmp" "$3" ;;
restore)
  if [ -f "$3" ]; then
    cp -f "$3" "$2.skiff-tmp"
    mv -f "$2.skiff-tmp" "$2"
  fi ;;
esac`

// pinCommand writes the override that pins the service to rel (carried on standard input) and saves, or
// when going back restores, the compose file of rel.
func (r *imageRun) pinCommand(rel ImageRelease, back bool) (remote.Command, error) {
	envFile := ""
	if r.app.Env != nil {
		envFile = EnvPath(r.app)
	}
	override, err := compose.Override(r.app.Service, rel.Ref(), envFile)
	if err != nil {
		return remote.Command{}, err
	}
	mode := "save"
	if back {
		mode = "restore"
	}
	cmd := remote.Script(pinScript, r.overrideFile(), r.composeFile(), r.snapshot(rel.ID), mode)
	cmd.Stdin = bytes.NewReader(override)
	return cmd, nil
}

// upTimeout bounds `up`, which with --wait waits for the service itself: the app's timeout, 10m unless set.
func (r *imageRun) upTimeout() time.Duration {
	if t := r.app.Timeout.Duration; t > 0 {
		return t
	}
	return 10 * time.Minute
}

// upCommand brings the service up from the app's directory, so that compose finds the app's .env there.
func (r *imageRun) upCommand() (remote.Command, error) {
	argv, err := r.tool.Up(r.proj, r.app.Service)
	if err != nil {
		return remote.Command{}, err
	}
	return remote.Command{Argv: argv, Dir: r.app.Path}, nil
}

// activate pins the service to rel, brings it up and checks it: containers running (and healthy when the
// image or compose file defines a healthcheck), check ports answering inside the container and on the host,
// the HTTP check, and the containers still the same once all that passed. back says that rel is a release
// being returned to, whose compose file snapshot is restored first.
func (r *imageRun) activate(ctx context.Context, rel ImageRelease, back bool) error {
	pin, err := r.pinCommand(rel, back)
	if err != nil {
		return err
	}
	up, err := r.upCommand()
	if err != nil {
		return err
	}
	if err := r.step("pin", func() error { return r.run(ctx, pin) }); err != nil {
		return err
	}
	err = r.step("up", func() error {
		ctx, cancel := context.WithTimeout(ctx, r.upTimeout())
		defer cancel()
		return r.run(ctx, up)
	})
	if err != nil {
		return err
	}
	// A dry run brought nothing up.
	return r.change("", "wait for the service's containers and check them", func() error { return r.checkUp(ctx, rel) })
}

// checkUp waits for the service's containers that up started with rel, checks the app and confirms that the
// same containers still run.
func (r *imageRun) checkUp(ctx context.Context, rel ImageRelease) error {
	var ctrs []compose.Container
	err := r.step("container", func() (err error) {
		ctrs, err = r.waitContainers(ctx, rel.Ref())
		return err
	})
	r.out.Image.Containers = ctrs
	if err != nil {
		return err
	}
	if err := r.check(ctx); err != nil {
		r.logContainers(context.WithoutCancel(ctx), ctrs)
		return err
	}
	return r.step("stable", func() error {
		now, err := r.confirmContainers(ctx, ctrs)
		if now != nil {
			r.out.Image.Containers = now
		}
		return err
	})
}
