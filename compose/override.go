package compose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// OverrideFile is the name of the file, next to the app's compose.yaml, that pins its service to the
// digest skiff deployed. Run compose by hand with `-f compose.yaml -f skiff.override.yaml` to get what
// skiff runs.
const OverrideFile = "skiff.override.yaml"

// Override renders the override file that pins service to ref, which must carry a digest, and, when envFile
// is not empty, gives it that absolute path as its env_file (a changed file then recreates the container,
// since compose hashes the service's resolved environment). Names and the
// reference go in as JSON strings, which YAML reads as double-quoted scalars, so no value can change the
// structure of the file (a service called "true" or "1e3" stays a string).
func Override(service string, ref Reference, envFile string) ([]byte, error) {
	if err := ValidateService(service); err != nil {
		return nil, err
	}
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if ref.Digest == "" {
		return nil, fmt.Errorf("override: image %s is not pinned to a digest", ref)
	}
	svc, _ := json.Marshal(service)
	img, _ := json.Marshal(ref.String())
	var b bytes.Buffer
	b.WriteString("# Written by skiff at every deploy and rollback; do not edit. It pins the service to the exact\n")
	b.WriteString("# image skiff deployed. To run compose by hand: -f compose.yaml -f " + OverrideFile + "\n")
	b.WriteString("services:\n")
	fmt.Fprintf(&b, "  %s:\n    image: %s\n", svc, img)
	if envFile != "" {
		if !strings.HasPrefix(envFile, "/") || strings.ContainsAny(envFile, "\x00\n\r") {
			return nil, fmt.Errorf("override: env_file %q must be an absolute path", envFile)
		}
		env, _ := json.Marshal(envFile)
		fmt.Fprintf(&b, "    env_file:\n      - %s\n", env)
	}
	return b.Bytes(), nil
}

// ParseOverride reads back the service and pinned reference of a file written by Override.
func ParseOverride(data []byte) (service string, ref Reference, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(trimmed, ":"):
			if err := json.Unmarshal([]byte(strings.TrimSuffix(trimmed, ":")), &service); err != nil {
				return "", Reference{}, fmt.Errorf("override: service line %q: %w", line, err)
			}
		case strings.HasPrefix(trimmed, "image: "):
			var s string
			if err := json.Unmarshal([]byte(strings.TrimPrefix(trimmed, "image: ")), &s); err != nil {
				return "", Reference{}, fmt.Errorf("override: image line %q: %w", line, err)
			}
			if ref, err = ParseReference(s); err != nil {
				return "", Reference{}, fmt.Errorf("override: %w", err)
			}
		}
	}
	if service == "" || ref.Digest == "" {
		return "", Reference{}, fmt.Errorf("override: no pinned service found")
	}
	if err := ValidateService(service); err != nil {
		return "", Reference{}, fmt.Errorf("override: %w", err)
	}
	return service, ref, nil
}
