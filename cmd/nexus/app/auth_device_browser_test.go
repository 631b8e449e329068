package app_test

import (
	"context"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nexus-suite/nexus/storage/storagetest"
)

// chromiumPath finds Debian's chromium. Without it the test skips, unless
// NEXUS_TEST_SERVICES requires every service, as CI does.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if storagetest.Required() {
		t.Fatal("chromium is not installed; install Debian's chromium package (.ci/run does)")
	}
	t.Skip("chromium is not installed; install Debian's chromium package to run this test")
	return ""
}

// TestDevicePageInChromium signs in, confirms the code and approves in a
// real headless browser, with a fresh profile and only loopback traffic.
func TestDevicePageInChromium(t *testing.T) {
	browserPath := chromiumPath(t)
	s := startDeviceServer(t, engineSQLite)
	email := s.registerVerified(t)
	deviceCode, userCode := s.startDevice(t)

	options := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browserPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
	}
	allocator, cancelAllocator := chromedp.NewExecAllocator(context.Background(), options...)
	defer cancelAllocator()
	ctx, cancelBrowser := chromedp.NewContext(allocator)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(s.url+"/v1/auth/device?user_code="+url.QueryEscape(userCode)),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#approve")),
	)
	if err != nil {
		t.Fatalf("sign in on the verification page: %v", err)
	}
	shownCode, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#shown_code")))
	if err != nil {
		t.Fatalf("read the confirmed code: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#result")),
	)
	if err != nil {
		t.Fatalf("approve on the verification page: %v", err)
	}
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result")))
	if err != nil {
		t.Fatalf("read the result page: %v", err)
	}
	if shownCode != userCode {
		t.Errorf("confirmation shows code %q, want %q", shownCode, userCode)
	}
	if !strings.Contains(result, "Device connected") {
		t.Errorf("result page heading = %q, want Device connected", result)
	}

	s.clock.Advance(deviceInterval)
	if got := s.poll(t, deviceCode); got != "" {
		t.Errorf("poll after approval in the browser = %s, want tokens", got)
	}
}
