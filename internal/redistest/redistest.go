// Package redistest starts real redis-server processes for tests and
// examples: each on a free loopback port, with its files in a directory of
// its own, stopped and removed when the test ends.
//
// A test that needs Redis calls [Start]. When redis-server is not installed
// the test is skipped with a message saying how to install it, except under
// CI=true, where it fails: CI must not go green without running them.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Binary is the program Start runs, looked up in PATH.
const Binary = "redis-server"

// InstallHint says how to get Binary on Debian and Ubuntu.
const InstallHint = "apt-get install -y redis-server"

// ErrNotInstalled is returned by StartServer when Binary is not in PATH.
var ErrNotInstalled = errors.New("redistest: " + Binary + " not found in PATH (install it: " + InstallHint + ")")

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 10 * time.Second

// Server is one running redis-server. Its methods are not safe for
// concurrent use.
type Server struct {
	// Addr is the server's host:port on loopback.
	Addr string
	// Dir holds the server's log and any files it writes.
	Dir string

	port   int
	config []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a redis-server for t with the given extra configuration
// directives (such as "maxmemory 1mb"), and stops it when t ends. Without
// redis-server it skips t, or fails it when the environment has CI=true.
func Start(t testing.TB, config ...string) *Server {
	t.Helper()
	s, err := StartServer(t.TempDir(), config...)
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

// StartServer starts a redis-server that keeps its files in dir, on a free
// loopback port, with the given extra configuration directives. It returns
// once the server answers PING. The caller must Stop it.
func StartServer(dir string, config ...string) (*Server, error) {
	if _, err := exec.LookPath(Binary); err != nil {
		return nil, ErrNotInstalled
	}
	// A port found free may be taken by someone else before the server
	// binds it: try a few.
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		s := &Server{Dir: dir, port: port, config: config}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// args are the server's command line: no persistence, no background
// processes, nothing outside Dir.
func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--logfile", s.logPath(),
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
	}
	for _, line := range s.config {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		a = append(a, "--"+f[0])
		a = append(a, f[1:]...)
	}
	return a
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "redis.log") }

func (s *Server) start() error {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	cmd := exec.Command(Binary, s.args()...)
	// Its own process group, so that a signal sent to the test's group (a
	// ^C) does not race Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", Binary, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		_ = s.kill()
		return err
	}
	return nil
}

func (s *Server) waitReady() error {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("redistest: %s exited at start: %s", Binary, s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: %s on %s not ready after %v: %w; log: %s", Binary, s.Addr, readyTimeout, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logTail returns the last lines of the server's log, for error messages.
func (s *Server) logTail() string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 5 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, " | ")
}

// Client returns a client of the server, closed when t ends; each of opts
// may change its options first.
func (s *Server) Client(t testing.TB, opts ...func(*goredis.Options)) *goredis.Client {
	t.Helper()
	o := s.Options()
	for _, f := range opts {
		f(o)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Options returns client options for the server.
func (s *Server) Options() *goredis.Options {
	return &goredis.Options{Addr: s.Addr}
}

// URL returns the server's address as a redis:// URL (goredis.ParseURL).
func (s *Server) URL() string { return "redis://" + s.Addr }

// Stop stops the server (SIGKILL: it keeps nothing worth a clean
// shutdown) and waits for it to exit. Stopping a stopped server does
// nothing.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	return s.kill()
}

func (s *Server) kill() error {
	cmd := s.cmd
	s.cmd = nil
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: stop %s: %w", Binary, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(readyTimeout):
		return fmt.Errorf("redistest: %s (pid %d) did not exit", Binary, cmd.Process.Pid)
	}
}

// Start starts a stopped server again, empty and on the same address, as
// a Redis without persistence comes back from a crash.
func (s *Server) Start() error {
	if s.cmd != nil {
		return fmt.Errorf("redistest: %s on %s is running", Binary, s.Addr)
	}
	return s.start()
}

// Restart stops the server and starts it again: see Start.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// StartCluster starts, for t, a redis-server in cluster mode that holds
// every slot: a one-node Redis Cluster. Cluster clients work with it as
// with a larger one, and it refuses what a Cluster refuses, such as a
// script or command whose keys are in different slots.
func StartCluster(t testing.TB, config ...string) *Server {
	t.Helper()
	s := Start(t, append([]string{"cluster-enabled yes", "cluster-config-file nodes.conf"}, config...)...)
	c := goredis.NewClient(s.Options())
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("redistest: assign the cluster's slots: %v", err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ready after %v: %q, %v", readyTimeout, info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ClusterClient returns a Cluster client of the server, closed when t ends.
func (s *Server) ClusterClient(t testing.TB) *goredis.ClusterClient {
	t.Helper()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{s.Addr}})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
