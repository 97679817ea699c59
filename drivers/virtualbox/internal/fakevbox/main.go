package fakevbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// OverlapSuffix names the file (next to the state file) where calls that
// ran while another was running are written: VBoxManage calls must be
// serialised, and a test checks that this file never appears.
const OverlapSuffix = ".overlap"

// Main is the fake VBoxManage's main: it runs one invocation with the
// environment given and returns the exit code.
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	path := getenv(EnvState)
	if path == "" {
		fmt.Fprintf(stderr, "VBoxManage: error: fake: %s is not set\n", EnvState)
		return exitFail
	}
	// One call at a time: the busy file is the lock, and a second call
	// that finds it records the overlap instead of waiting.
	busy := path + ".busy"
	lock, err := os.OpenFile(busy, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		f, ferr := os.OpenFile(path+OverlapSuffix, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if ferr == nil {
			fmt.Fprintf(f, "%q\n", args)
			f.Close()
		}
		fmt.Fprintln(stderr, "VBoxManage: error: fake: another VBoxManage call is running at the same time")
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake: %v\n", err)
		return exitFail
	}
	lock.Close()
	defer os.Remove(busy)

	if ms, _ := strconv.Atoi(getenv(EnvDelay)); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	s, err := Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake: %v\n", err)
		return exitFail
	}
	if v := getenv(EnvVersion); v != "" {
		s.Host.Version = v
	}
	var errBuf bytes.Buffer
	code := RunEnv(s, args, getenv, stdout, io.MultiWriter(stderr, &errBuf))
	s.Calls = append(s.Calls, Call{Args: args, Exit: code, Stderr: errBuf.String()})
	if err := s.Save(path); err != nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake: %v\n", err)
		return exitFail
	}
	return code
}
