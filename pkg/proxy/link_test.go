package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestParseLink(t *testing.T) {
	l, err := ParseLink(testLink)
	if err != nil {
		t.Fatal(err)
	}
	want := Link{Address: "vpn.example.com", Port: 443, UserID: testUUID, ServerName: "www.example.com", Fingerprint: "firefox", SpiderX: "/path", Flow: DefaultFlow}
	got := l
	got.PublicKey, got.ShortID = nil, nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseLink = %+v, want %+v", got, want)
	}
	if len(l.PublicKey) != 32 || !bytes.Equal(l.ShortID, []byte{0x01, 0x23, 0xab, 0xcd}) {
		t.Errorf("keys = %x %x", l.PublicKey, l.ShortID)
	}

	bad := []struct {
		name, link, want string
	}{
		{"not vless", strings.Replace(testLink, "vless://", "vmess://", 1), "scheme"},
		{"no user", strings.Replace(testLink, testUUID+"@", "", 1), "no user id"},
		{"bad uuid", strings.Replace(testLink, testUUID, "abc", 1), "UUID"},
		{"no port", strings.Replace(testLink, ":443", "", 1), "no port"},
		{"bad port", strings.Replace(testLink, ":443", ":0", 1), "port"},
		{"tls not reality", strings.Replace(testLink, "security=reality", "security=tls", 1), "only reality"},
		{"ws transport", strings.Replace(testLink, "type=tcp", "type=ws", 1), "only tcp"},
		{"bad pbk", strings.Replace(testLink, testPBK, "AAAA", 1), "pbk"},
		{"bad sid", strings.Replace(testLink, "sid=0123abcd", "sid=xyz", 1), "sid"},
		{"no sni", strings.Replace(testLink, "sni=www.example.com&", "", 1), "no sni"},
		{"garbage", "%%%", "not a URL"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLink(tt.link)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseLink error = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testUUID) || strings.Contains(err.Error(), testPBK) {
				t.Errorf("error %q reveals the link", err)
			}
		})
	}
}

// FuzzParseLink: share links come from providers; parsing never panics,
// and errors never echo the link.
func FuzzParseLink(f *testing.F) {
	f.Add(testLink)
	f.Add("vless://x@[::1]:1?security=reality")
	f.Add("vless://" + testUUID + "@h:1?security=reality&pbk=" + testPBK + "&sid=&sni=a")
	// Attack inputs: a password in the user info, ports out of range, an
	// IPv6 zone, percent-encoded parts, repeated and huge parameters,
	// control bytes and an empty host.
	f.Add("vless://" + testUUID + ":pw@h:443?security=reality&pbk=" + testPBK + "&sid=01&sni=a")
	f.Add("vless://" + testUUID + "@h:99999?security=reality&pbk=" + testPBK + "&sni=a")
	f.Add("vless://" + testUUID + "@h:-1?security=reality&pbk=" + testPBK + "&sni=a")
	f.Add("vless://" + testUUID + "@[fe80::1%25eth0]:443?security=reality&pbk=" + testPBK + "&sni=a")
	f.Add("vless://%36b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d@h%2e:443?security=reality&pbk=" + testPBK + "&sni=%00")
	f.Add("vless://" + testUUID + "@h:443?security=reality&security=tls&pbk=" + testPBK + "&pbk=x&sni=a&sid=" + strings.Repeat("0", 1000))
	f.Add("vless://" + testUUID + "@:443?security=reality&pbk=" + testPBK + "&sni=a")
	f.Add("vless://" + testUUID + "@h:443\x00?security=reality&pbk=" + testPBK + "&sni=a#\n")
	f.Add(" vless://" + testUUID + "@h:443?security=reality&pbk=" + testPBK + "====&sni=a\n")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err != nil {
			if len(s) > 12 && strings.Contains(err.Error(), s) {
				t.Errorf("error %q echoes the link", err)
			}
			return
		}
		if l.Port == 0 || len(l.PublicKey) != 32 || len(l.ShortID) > 8 || l.ServerName == "" {
			t.Errorf("accepted incomplete link: %+v", l)
		}
	})
}

func ExampleParseLink() {
	l, err := ParseLink("vless://6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d@vpn.example.com:443" +
		"?security=reality&type=tcp&flow=xtls-rprx-vision&sni=www.example.com&fp=chrome" +
		"&pbk=E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM&sid=0123abcd#my-server")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Address, l.Port, l.ServerName, l.Fingerprint, l.Flow)
	// Output: vpn.example.com 443 www.example.com chrome xtls-rprx-vision
}
