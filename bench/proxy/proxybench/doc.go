// Command proxybench is the helper of bench/proxy/run.sh. "server" runs a
// loopback xray VLESS+REALITY server and the destination HTTP server the
// benchmark downloads from; "client" runs hostd's proxy service (the code
// `hostd run` runs for the proxy section) against that server.
package main
