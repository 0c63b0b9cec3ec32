package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
)

// maxEnvFile bounds an environment file read back from a target.
const maxEnvFile = 1 << 20

// RenderEnv renders an app's [env] table as the file's content: one KEY=value line per key, sorted, values
// literal (the format docker's --env-file and compose's env_file read). Secret values come from secret; a
// missing one, or one with a newline, is an error naming the variable, never its value.
func RenderEnv(e *inventory.EnvFile, secret func(string) string) ([]byte, error) {
	var b bytes.Buffer
	isSecret := map[string]bool{}
	for _, name := range e.SecretEnv {
		isSecret[name] = true
	}
	for _, k := range e.Keys() {
		v, ok := e.Values[k]
		if isSecret[k] {
			if secret != nil {
				v = secret(k)
			}
			if v == "" {
				return nil, fmt.Errorf("env: secret_env %s is not set in the environment", k)
			}
			if strings.ContainsAny(v, "\n\r\x00") {
				return nil, fmt.Errorf("env: the value of %s contains a newline or NUL", k)
			}
		} else if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.Bytes(), nil
}

// EnvPath is where an app's environment file lives on its hosts.
func EnvPath(app *inventory.App) string {
	return path.Join(release.Layout{Path: app.Path}.Shared(), app.Env.File)
}

// writeEnv writes the app's environment file to shared/ unless the host already has exactly that content,
// and reports whether it wrote. The file is made through a temporary name in the same directory that is
// chmod 0600 before a byte is written, then renamed over the old one, so that no reader ever sees a partial
// file or one readable by others. The content goes over SFTP, never into a command line.
func (r *hostRun) writeEnv(ctx context.Context) (bool, error) {
	e := r.app.Env
	if e == nil {
		return false, nil
	}
	dst := EnvPath(r.app)
	want, err := RenderEnv(e, r.opts.Secret)
	if err != nil {
		return false, err
	}
	var wrote bool
	err = r.step("env", func() error {
		client, err := r.c.SFTP(ctx)
		if err != nil {
			return err
		}
		have, err := readEnvFile(client, dst)
		if err == nil && bytes.Equal(have, want) {
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return r.change("", fmt.Sprintf("write %s (%d keys)", dst, len(e.Keys())), func() error {
			if err := client.MkdirAll(path.Dir(dst)); err != nil {
				return err
			}
			tmp := path.Join(path.Dir(dst), ".skiff-env-"+release.NewToken())
			if err := writeAtomic(client, tmp, dst, 0o600, bytes.NewReader(want)); err != nil {
				return fmt.Errorf("write %s: %w", dst, err)
			}
			wrote = true
			return nil
		})
	})
	if wrote {
		r.out.EnvWritten = true
		r.logf("wrote %s (%d keys)", dst, len(e.Keys()))
	}
	return wrote, err
}

// writeAtomic writes src to dst through tmp, a name in the same directory: tmp gets mode before a byte is
// written to it, and is renamed over dst once complete, so that no reader sees a partial file or content
// under a wider mode. tmp is removed when anything fails.
func writeAtomic(client *sftp.Client, tmp, dst string, mode fs.FileMode, src io.Reader) error {
	return release.WriteFile(client, tmp, dst, os.O_WRONLY|os.O_TRUNC, mode, func(f *sftp.File) error {
		_, err := io.Copy(f, src)
		return err
	})
}

// readEnvFile reads an environment file from a target, at most maxEnvFile bytes.
func readEnvFile(client *sftp.Client, name string) ([]byte, error) {
	f, err := client.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxEnvFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxEnvFile)
	}
	return data, nil
}

// HostEnv is an app's environment file as a host has it.
type HostEnv struct {
	// Present is false when the host has no file yet.
	Present bool
	// Values by key, as the file holds them.
	Values map[string]string
	// Mode is the file's permission bits.
	Mode fs.FileMode
}

// ReadEnv reads and parses the app's environment file on a host. The file is target data: it is bounded,
// and a line that is not KEY=value is an error naming its number.
func ReadEnv(ctx context.Context, c HostConn, app *inventory.App) (*HostEnv, error) {
	if app.Env == nil {
		return nil, fmt.Errorf("app %s has no [apps.%s.env]", app.Name, app.Name)
	}
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, err
	}
	name := EnvPath(app)
	fi, err := client.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &HostEnv{}, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := readEnvFile(client, name)
	if err != nil {
		return nil, err
	}
	values, err := ParseEnv(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &HostEnv{Present: true, Values: values, Mode: fi.Mode().Perm()}, nil
}

// ParseEnv reads KEY=value lines; blank lines and lines starting with # are skipped.
func ParseEnv(data []byte) (map[string]string, error) {
	values := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsFunc(k, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return nil, fmt.Errorf("line %d is not KEY=value", i+1)
		}
		values[k] = v
	}
	return values, nil
}
