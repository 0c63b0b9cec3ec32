// Package remote is skiff's SSH transport: it dials hosts (known_hosts checking,
// agent and key files, jump hosts, timeouts, keepalive), keeps one connection per
// host that every caller shares, runs commands with POSIX shell quoting, opens
// SFTP clients and tunnels to TCP ports or unix sockets on the target.
//
// It imports no other skiff package: callers describe targets with Target and
// commands with Command.
package remote

import "strings"

// Quote returns s as one POSIX shell word. Words made only of letters, digits
// and %+,-./:=@_ stay bare so that rendered commands remain readable; anything
// else is wrapped in single quotes, each single quote inside written as a
// closing quote, an escaped quote and an opening quote; the empty string
// becomes a pair of quotes:
//
//	it's  ->  'it'\''s'
//	""    ->  ''
//
// Quote is the only way skiff turns data into shell text.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafeWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join renders argv as one shell command line, each word passed through Quote.
// A first word that contains '=' is always quoted, so that the shell runs it as
// a command instead of reading it as a variable assignment.
func Join(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if i == 0 && a != "" && isSafeWord(a) && strings.Contains(a, "=") {
			words[i] = "'" + a + "'"
			continue
		}
		words[i] = Quote(a)
	}
	return strings.Join(words, " ")
}

// isSafeWord reports whether s needs no quoting at all in a POSIX shell.
func isSafeWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("%+,-./:=@_", c) >= 0:
		default:
			return false
		}
	}
	return true
}
