package sqlite_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/sqlite"
)

// helperEnv names the helper a re-executed test binary is to be; see
// helper.
const helperEnv = "DOCKET_SQLITE_HELPER"

// helper re-executes the test binary to run the test named name, with env
// added to its environment; that test does its work only when it finds
// helperEnv set.
func helper(t *testing.T, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

const sharedPerProcess = 300

// TestProcesses runs two processes that write and read one file at once:
// each writes its own entries and one shared key, and reads back the
// other's as they appear. Then this process finds them all.
func TestProcesses(t *testing.T) {
	path := dbPath(t)
	var cmds []*exec.Cmd
	for p := range 2 {
		cmd := helper(t, "TestProcessHelper", helperEnv+"=writer", "DOCKET_SQLITE_PATH="+path,
			"DOCKET_SQLITE_ME="+strconv.Itoa(p))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", p, err)
		}
	}
	s := open(t, path)
	for p := range 2 {
		for i := range sharedPerProcess {
			want(t, s, workflowKey(fmt.Sprint("p", p), i), fmt.Sprint(p, "/", i))
		}
	}
	if e, err := s.Get(ctx, globalKey(0), codec); err != nil || !strings.HasPrefix(e.Value.(string), "shared by ") {
		t.Fatalf("shared key = %v, %v", e.Value, err)
	}
}

// TestProcessHelper is one process of TestProcesses.
func TestProcessHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "writer" {
		t.Skip("helper process of TestProcesses")
	}
	me, _ := strconv.Atoi(os.Getenv("DOCKET_SQLITE_ME"))
	other := 1 - me
	s, err := sqlite.Open(os.Getenv("DOCKET_SQLITE_PATH"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seen := 0 // how many of the other's entries this one has read
	for i := range sharedPerProcess {
		set(t, s, workflowKey(fmt.Sprint("p", me), i), fmt.Sprint(me, "/", i))
		set(t, s, globalKey(0), fmt.Sprint("shared by ", me))
		for {
			e, err := s.Get(ctx, workflowKey(fmt.Sprint("p", other), seen), codec)
			if errors.Is(err, backends.ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint(other, "/", seen); e.Value != want {
				t.Fatalf("read %v; want %s", e.Value, want)
			}
			seen++
		}
	}
	// The other process may still be writing; wait for the rest of its
	// entries, reading while it writes.
	deadline := time.Now().Add(30 * time.Second)
	for seen < sharedPerProcess && time.Now().Before(deadline) {
		if _, err := s.Get(ctx, workflowKey(fmt.Sprint("p", other), seen), codec); err == nil {
			seen++
		} else if !errors.Is(err, backends.ErrNotFound) {
			t.Fatal(err)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	if seen < sharedPerProcess {
		t.Fatalf("saw %d of the other process's entries", seen)
	}
}

const crashAcks = 200

// TestCrash kills a process that is writing checkpoints (SIGKILL: no
// deferred calls, no Close) and checks that every checkpoint it saw
// acknowledged is there after reopening, and that the file takes writes.
// With synchronous=NORMAL this holds because each commit is in the
// write-ahead log, in the OS page cache, before Set returns.
func TestCrash(t *testing.T) {
	for _, syncFull := range []bool{false, true} {
		t.Run(fmt.Sprintf("syncFull=%v", syncFull), func(t *testing.T) {
			path := dbPath(t)
			cmd := helper(t, "TestCrashHelper", helperEnv+"=crash", "DOCKET_SQLITE_PATH="+path,
				"DOCKET_SQLITE_SYNC="+strconv.FormatBool(syncFull))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := -1
			lines := bufio.NewScanner(out)
			for acked+1 < crashAcks && lines.Scan() {
				n, err := strconv.Atoi(lines.Text())
				if err != nil {
					continue // test framework output
				}
				if n != acked+1 {
					t.Fatalf("helper acknowledged %d after %d", n, acked)
				}
				acked = n
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if acked+1 < crashAcks {
				t.Fatalf("helper stopped after %d acknowledgements: %v", acked+1, err)
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("helper ended with %v, not by SIGKILL", cmd.ProcessState)
			}
			s := open(t, path)
			for i := 0; i <= acked; i++ {
				want(t, s, workflowKey("crashed", i), strconv.Itoa(i))
			}
			set(t, s, globalKey(1), "after")
			want(t, s, globalKey(1), "after")
			n, err := s.PurgeExecution(ctx, "crashed")
			if err != nil || n < acked+1 {
				t.Fatalf("PurgeExecution = %d, %v; want at least %d", n, err, acked+1)
			}
		})
	}
}

// TestCrashHelper is the process TestCrash kills: it writes checkpoints,
// from several goroutines so that group commits are in flight, and prints
// each index Set has acknowledged, in order.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "crash" {
		t.Skip("helper process of TestCrash")
	}
	var opts []sqlite.Option
	if full, _ := strconv.ParseBool(os.Getenv("DOCKET_SQLITE_SYNC")); full {
		opts = append(opts, sqlite.WithSyncFull())
	}
	s, err := sqlite.Open(os.Getenv("DOCKET_SQLITE_PATH"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	// Background writers keep commits going while the checkpoints land.
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				_ = s.Set(ctx, workflowKey(fmt.Sprint("noise", g), i), backends.Entry{Value: strings.Repeat("n", 500)}, codec)
			}
		}()
	}
	for i := 0; ; i++ {
		if err := s.Set(ctx, workflowKey("crashed", i), backends.Entry{Value: strconv.Itoa(i), Execution: "crashed"}, codec); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(os.Stdout, i)
	}
}

// TestPermission opens a file in a directory the process may not write:
// as root, which may write anywhere, it runs the Open in a helper process
// as an unprivileged user.
func TestPermission(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o555); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(locked, "docket.db")
	if os.Geteuid() != 0 {
		_, err := sqlite.Open(path)
		checkPermissionError(t, err)
		return
	}
	// The unprivileged user needs to reach the directory and run a copy of
	// this binary (the build cache is root's alone).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "sqlite.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := helper(t, "TestPermissionHelper", helperEnv+"=permission", "DOCKET_SQLITE_PATH="+path)
	cmd.Path, cmd.Args[0] = exe, exe
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Open refused") {
		t.Fatalf("helper output lacks its verdict:\n%s", out)
	}
}

func checkPermissionError(t *testing.T, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "permissions") {
		t.Fatalf("Open in a read-only directory = %v; want an error about permissions", err)
	}
	t.Logf("Open refused: %v", err)
}

func TestPermissionHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "permission" {
		t.Skip("helper process of TestPermission")
	}
	_, err := sqlite.Open(os.Getenv("DOCKET_SQLITE_PATH"))
	checkPermissionError(t, err)
	fmt.Println("Open refused")
}
