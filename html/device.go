package html

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// DeviceCookie marks a browser in which a user signed in (OWASP's "device
// cookie"): its failed sign-ins for that user count only against it, so
// an attacker elsewhere cannot lock the user out of it (see SignInLimiter).
const DeviceCookie = "latchkey_device"

// DeviceCookieTTL is how long a device cookie is valid after the sign-in
// that issued it; each successful sign-in issues a new one.
const DeviceCookieTTL = 180 * 24 * time.Hour

// A device cookie is "v1.NONCE.ISSUED.MAC": a random nonce (the device
// id), the Unix time it was issued, and an HMAC-SHA256 with the device key
// over both and the normalized email it was issued for, which the cookie
// does not contain: the cookie is valid only for the email being signed in.

// deviceToken returns a device cookie value for email, issued now.
func (u *ui) deviceToken(email, nonce string, issued time.Time) string {
	ts := strconv.FormatInt(issued.Unix(), 10)
	return "v1." + nonce + "." + ts + "." + u.deviceMAC(email, nonce, ts)
}

func (u *ui) deviceMAC(email, nonce, ts string) string {
	m := hmac.New(sha256.New, u.deviceKey)
	m.Write([]byte("latchkey-device\x00" + latchkey.NormalizeEmail(email) + "\x00" + nonce + "\x00" + ts))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// deviceID returns the id of r's device cookie if it is valid for email
// (signed by this server's key, for this email, not expired), else "".
func (u *ui) deviceID(r *http.Request, email string) string {
	c, err := r.Cookie(DeviceCookie)
	if err != nil || len(c.Value) > 200 {
		return ""
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 || parts[0] != "v1" || len(parts[1]) < 22 || latchkey.NormalizeEmail(email) == "" {
		return ""
	}
	nonce, ts, mac := parts[1], parts[2], parts[3]
	if !hmac.Equal([]byte(mac), []byte(u.deviceMAC(email, nonce, ts))) {
		return ""
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ""
	}
	issued, now := time.Unix(sec, 0), u.Now()
	if issued.After(now.Add(time.Minute)) || now.Sub(issued) > DeviceCookieTTL {
		return ""
	}
	return nonce
}

// setDeviceCookie gives the browser a new device cookie for email. It is
// SameSite=Strict: only the sign-in form, a same-site POST, needs it.
func (u *ui) setDeviceCookie(w http.ResponseWriter, r *http.Request, email string) error {
	nonce, err := u.randomToken()
	if err != nil {
		return err
	}
	now := u.Now()
	http.SetCookie(w, &http.Cookie{
		Name: DeviceCookie, Value: u.deviceToken(email, nonce, now), Path: cookiePath,
		Expires: now.Add(DeviceCookieTTL).UTC(), MaxAge: int(DeviceCookieTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: u.secure(r),
	})
	return nil
}
