package compose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Everything read back from a target is validated here before skiff uses it in a command or a dial.

var pullDigestRE = regexp.MustCompile(`(?m)^Digest: (sha256:[0-9a-f]{64})\s*$`)

// ParsePullDigest returns the manifest digest that `docker pull` reports ("Digest: sha256:…"), or "".
func ParsePullDigest(out []byte) string {
	m := pullDigestRE.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return string(m[len(m)-1][1])
}

// Image is a local image as InspectImage prints it.
type Image struct {
	ID          string   `json:"id"`
	RepoDigests []string `json:"repo_digests"`
}

// ParseImage decodes InspectImage's output.
func ParseImage(out []byte) (Image, error) {
	var img Image
	if err := json.Unmarshal(bytes.TrimSpace(out), &img); err != nil {
		return Image{}, fmt.Errorf("image inspect output: %w", err)
	}
	if !ValidDigest(img.ID) {
		return Image{}, fmt.Errorf("image inspect output: invalid image id %q", img.ID)
	}
	return img, nil
}

// DigestFor returns the digest under which the image is known in repository repo. When the pull reported
// a digest (want), it must be among them; otherwise the repository must have exactly one.
func (img Image) DigestFor(repo, want string) (string, error) {
	var found []string
	for _, rd := range img.RepoDigests {
		r, d, ok := strings.Cut(rd, "@")
		if !ok || !ValidDigest(d) || !SameRepository(r, repo) {
			continue
		}
		if want != "" && d == want {
			return d, nil
		}
		found = append(found, d)
	}
	switch {
	case want != "":
		return "", fmt.Errorf("image %s: the pulled digest %s is not among its repo digests %v", img.ID, want, img.RepoDigests)
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0:
		return "", fmt.Errorf("image %s has no repo digest for %s (repo digests %v): was it pulled from a registry?", img.ID, repo, img.RepoDigests)
	}
	return "", fmt.Errorf("image %s has several digests for %s (%v) and the pull named none", img.ID, repo, found)
}

// Container is what skiff knows of one container of a service.
type Container struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	ImageID      string        `json:"image_id"`
	Image        string        `json:"image"` // the reference it was created from: the pinned repo@digest
	Status       string        `json:"status"`
	ExitCode     int           `json:"exit_code"`
	Error        string        `json:"error,omitempty"`
	OOMKilled    bool          `json:"oom_killed,omitempty"`
	StartedAt    time.Time     `json:"started_at"`
	RestartCount int           `json:"restart_count"`
	Health       string        `json:"health,omitempty"` // "", "starting", "healthy" or "unhealthy"
	HealthOutput string        `json:"health_output,omitempty"`
	Ports        []PortBinding `json:"ports,omitempty"`
	IPs          []string      `json:"ips,omitempty"`
}

// PortBinding is a container port published on the host.
type PortBinding struct {
	ContainerPort int    `json:"container_port"`
	Proto         string `json:"proto"`
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      int    `json:"host_port"`
}

// Published returns the binding that publishes a TCP container port on hostPort.
func (c Container) Published(hostPort int) (PortBinding, bool) {
	for _, p := range c.Ports {
		if p.HostPort == hostPort && p.Proto == "tcp" {
			return p, true
		}
	}
	return PortBinding{}, false
}

// Short is the first 12 digits of the container's id, as docker shows it.
func (c Container) Short() string { return c.ID[:12] }

type rawContainer struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	ImageID  string `json:"image_id"`
	Image    string `json:"image"`
	Restarts int    `json:"restart_count"`
	State    struct {
		Status    string    `json:"Status"`
		ExitCode  int       `json:"ExitCode"`
		Error     string    `json:"Error"`
		OOMKilled bool      `json:"OOMKilled"`
		StartedAt time.Time `json:"StartedAt"`
		Health    *struct {
			Status string `json:"Status"`
			Log    []struct {
				Output string `json:"Output"`
			} `json:"Log"`
		} `json:"Health"`
	} `json:"state"`
	Ports    map[string][]struct{ HostIp, HostPort string } `json:"ports"`
	Networks map[string]struct{ IPAddress string }          `json:"networks"`
}

var knownStatus = map[string]bool{"created": true, "running": true, "paused": true, "restarting": true, "removing": true, "exited": true, "dead": true}

// ParseContainers decodes InspectContainers' output, one container per line.
func ParseContainers(out []byte) ([]Container, error) {
	var list []Container
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r rawContainer
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("container inspect output: %w", err)
		}
		c, err := r.container()
		if err != nil {
			return nil, fmt.Errorf("container inspect output: %w", err)
		}
		list = append(list, c)
	}
	return list, sc.Err()
}

func (r rawContainer) container() (Container, error) {
	if !validContainerID(r.ID) {
		return Container{}, fmt.Errorf("invalid container id %q", r.ID)
	}
	if !knownStatus[r.State.Status] {
		return Container{}, fmt.Errorf("container %s: unknown status %q", r.ID, r.State.Status)
	}
	c := Container{
		ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), ImageID: r.ImageID, Image: r.Image,
		Status: r.State.Status, ExitCode: r.State.ExitCode, Error: r.State.Error, OOMKilled: r.State.OOMKilled,
		StartedAt: r.State.StartedAt, RestartCount: r.Restarts,
	}
	if h := r.State.Health; h != nil {
		c.Health = h.Status
		if n := len(h.Log); n > 0 {
			c.HealthOutput = strings.TrimSpace(h.Log[n-1].Output)
		}
	}
	for port, binds := range r.Ports {
		num, proto, _ := strings.Cut(port, "/")
		cp, err := strconv.Atoi(num)
		if err != nil || cp < 1 || cp > 65535 {
			return Container{}, fmt.Errorf("container %s: invalid port %q", r.ID, port)
		}
		for _, b := range binds {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp < 1 || hp > 65535 {
				continue
			}
			c.Ports = append(c.Ports, PortBinding{ContainerPort: cp, Proto: proto, HostIP: b.HostIp, HostPort: hp})
		}
	}
	sort.Slice(c.Ports, func(i, j int) bool {
		a, b := c.Ports[i], c.Ports[j]
		return a.HostPort < b.HostPort || a.HostPort == b.HostPort && a.HostIP < b.HostIP
	})
	names := make([]string, 0, len(r.Networks))
	for n := range r.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ip := net.ParseIP(r.Networks[n].IPAddress); ip != nil {
			c.IPs = append(c.IPs, ip.String())
		}
	}
	return c, nil
}

// ParseIDs reads the container ids that ServiceContainers and AllContainers print, one per line.
func ParseIDs(out []byte) ([]string, error) {
	var ids []string
	for _, f := range strings.Fields(string(out)) {
		if !validContainerID(f) {
			return nil, fmt.Errorf("invalid container id %q in docker ps output", f)
		}
		ids = append(ids, f)
	}
	return ids, nil
}

// ListedImage is one line of ImageList.
type ListedImage struct {
	ID         string    `json:"id"`
	Repository string    `json:"repository,omitempty"` // "" for an untagged image
	Tag        string    `json:"tag,omitempty"`
	Digest     string    `json:"digest,omitempty"`
	Created    time.Time `json:"created"`
}

// ParseImageList decodes ImageList's output. Docker writes "<none>" for a missing repository, tag or
// digest; those become "".
func ParseImageList(out []byte) ([]ListedImage, error) {
	var list []ListedImage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r struct{ ID, Repository, Tag, Digest, CreatedAt string }
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("image list line %d: %w", n, err)
		}
		img := ListedImage{ID: r.ID, Repository: none(r.Repository), Tag: none(r.Tag), Digest: none(r.Digest)}
		if !ValidDigest(img.ID) {
			return nil, fmt.Errorf("image list line %d: invalid image id %q", n, r.ID)
		}
		if img.Digest != "" && !ValidDigest(img.Digest) {
			return nil, fmt.Errorf("image list line %d: invalid digest %q", n, r.Digest)
		}
		if img.Repository != "" && !ValidRepository(img.Repository) {
			return nil, fmt.Errorf("image list line %d: invalid repository %q", n, r.Repository)
		}
		if img.Tag != "" && !ValidTag(img.Tag) {
			return nil, fmt.Errorf("image list line %d: invalid tag %q", n, r.Tag)
		}
		if t, err := time.Parse("2006-01-02 15:04:05 -0700 MST", r.CreatedAt); err == nil {
			img.Created = t
		}
		list = append(list, img)
	}
	return list, sc.Err()
}

func none(s string) string {
	if s == "<none>" {
		return ""
	}
	return s
}

// ParseContainerImages decodes ContainerImages' output into container id -> image id.
func ParseContainerImages(out []byte) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 || !validContainerID(f[0]) || !ValidDigest(f[1]) {
			return nil, fmt.Errorf("unexpected container image line %q", sc.Text())
		}
		m[f[0]] = f[1]
	}
	return m, sc.Err()
}
