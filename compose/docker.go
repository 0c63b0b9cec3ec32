package compose

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Docker builds plain docker CLI commands. ConfigDir, when set, is passed as `docker --config DIR` to the
// commands that talk to a registry, so that a login lives in a directory of skiff's own instead of the
// login user's ~/.docker, and ends with Logout.
type Docker struct {
	ConfigDir string
}

func (d Docker) registryBase() []string {
	if d.ConfigDir == "" {
		return []string{"docker"}
	}
	return []string{"docker", "--config", d.ConfigDir}
}

func (d Docker) validateConfigDir() error {
	if d.ConfigDir != "" && (!strings.HasPrefix(d.ConfigDir, "/") || strings.ContainsAny(d.ConfigDir, "\x00\n")) {
		return fmt.Errorf("docker config directory %q must be an absolute path", d.ConfigDir)
	}
	return nil
}

// Login logs in to server as username; the password must be the command's standard input (it is read with
// --password-stdin) and is never part of the command line.
func (d Docker) Login(server, username string) ([]string, error) {
	if err := d.validateConfigDir(); err != nil {
		return nil, err
	}
	if err := ValidateServer(server); err != nil {
		return nil, err
	}
	if username == "" || strings.ContainsAny(username, "\x00\r\n") {
		return nil, fmt.Errorf("invalid registry username %q", username)
	}
	// --username=U keeps a name that starts with '-' from being read as an option.
	return append(d.registryBase(), "login", "--username="+username, "--password-stdin", server), nil
}

// Logout forgets the credentials Login stored for server.
func (d Docker) Logout(server string) ([]string, error) {
	if err := d.validateConfigDir(); err != nil {
		return nil, err
	}
	if err := ValidateServer(server); err != nil {
		return nil, err
	}
	return append(d.registryBase(), "logout", server), nil
}

// Pull pulls ref. Its output ends with a "Digest: sha256:…" line that ParsePullDigest reads.
func (d Docker) Pull(ref Reference) ([]string, error) {
	if err := d.validateConfigDir(); err != nil {
		return nil, err
	}
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	return append(d.registryBase(), "pull", ref.String()), nil
}

// imageFormat prints an image's id and repo digests as one JSON object.
const imageFormat = `{"id":{{json .Id}},"repo_digests":{{json .RepoDigests}}}`

// InspectImage prints the id and repo digests of a local image (see ParseImage); it fails when the image
// is not on the host.
func InspectImage(ref Reference) ([]string, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	return []string{"docker", "image", "inspect", "--format", imageFormat, ref.String()}, nil
}

// ServiceContainers lists the ids of the containers of one service of a project, stopped ones included,
// by the labels compose puts on them (this works the same for every compose flavour, and is much faster
// than compose ps). One-off containers from `compose run` are left out.
func ServiceContainers(project, service string) ([]string, error) {
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	if err := ValidateService(service); err != nil {
		return nil, err
	}
	return []string{"docker", "ps", "--all", "--quiet", "--no-trunc",
		"--filter", "label=com.docker.compose.project=" + project,
		"--filter", "label=com.docker.compose.service=" + service,
		"--filter", "label=com.docker.compose.oneoff=False",
	}, nil
}

// containerFormat prints what skiff needs of a container as one JSON object per line.
const containerFormat = `{"id":{{json .Id}},"name":{{json .Name}},"image_id":{{json .Image}},"image":{{json .Config.Image}},` +
	`"state":{{json .State}},"restart_count":{{json .RestartCount}},"ports":{{json .NetworkSettings.Ports}},` +
	`"networks":{{json .NetworkSettings.Networks}}}`

// InspectContainers prints one line per container (see ParseContainers).
func InspectContainers(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, errors.New("no container to inspect")
	}
	for _, id := range ids {
		if !validContainerID(id) {
			return nil, fmt.Errorf("invalid container id %q", id)
		}
	}
	return append([]string{"docker", "inspect", "--type", "container", "--format", containerFormat}, ids...), nil
}

// ContainerLogs prints the last lines a container wrote, for the log of a failed deploy.
func ContainerLogs(id string, lines int) ([]string, error) {
	if !validContainerID(id) {
		return nil, fmt.Errorf("invalid container id %q", id)
	}
	return []string{"docker", "logs", "--tail", strconv.Itoa(lines), id}, nil
}

// FollowLogs prints the last lines a container wrote (all of them when lines < 0), only those of the last
// since when since > 0, and with follow keeps printing what it writes until the command is ended.
func FollowLogs(id string, lines int, since time.Duration, follow bool) ([]string, error) {
	if !validContainerID(id) {
		return nil, fmt.Errorf("invalid container id %q", id)
	}
	argv := []string{"docker", "logs"}
	if lines >= 0 {
		argv = append(argv, "--tail", strconv.Itoa(lines))
	}
	if since > 0 {
		argv = append(argv, "--since", strconv.FormatInt(int64(since.Round(time.Second)/time.Second), 10)+"s")
	}
	if follow {
		argv = append(argv, "--follow")
	}
	return append(argv, id), nil
}

// validContainerID accepts the hex ids docker prints (12 to 64 digits).
func validContainerID(id string) bool {
	if len(id) < 12 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ImageList lists every image on the host with its repository, tag, digest and creation time, one JSON
// object per line (see ParseImageList): what prune weighs against the images still in use.
func ImageList() []string {
	return []string{"docker", "image", "ls", "--all", "--no-trunc", "--digests", "--format", "{{json .}}"}
}

// AllContainers lists the ids of every container on the host, stopped ones included.
func AllContainers() []string {
	return []string{"docker", "ps", "--all", "--quiet", "--no-trunc"}
}

// ContainerImages prints, for each container, its id and the id of the image it was created from (see
// ParseContainerImages); with AllContainers it tells which images are in use, even by stopped containers.
func ContainerImages(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, errors.New("no container to inspect")
	}
	for _, id := range ids {
		if !validContainerID(id) {
			return nil, fmt.Errorf("invalid container id %q", id)
		}
	}
	return append([]string{"docker", "inspect", "--type", "container", "--format", "{{.Id}} {{.Image}}"}, ids...), nil
}
