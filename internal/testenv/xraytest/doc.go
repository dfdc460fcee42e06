// Package xraytest starts an in-process xray VLESS+REALITY server on loopback
// for the proxy's tests and benchmark. It lives apart from testenv so
// that only the tests that need xray-core link it.
package xraytest
