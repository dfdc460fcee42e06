package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv/xraytest"
	"github.com/hostd/hostd/pkg/proxy"
)

// destHost is the name the server maps to the destination server.
const destHost = "dest.bench.test"

// serverInfo is what "server" prints for the clients.
type serverInfo struct {
	Host       string `json:"host"`
	Port       uint16 `json:"port"`
	UserID     string `json:"user_id"`
	PublicKey  string `json:"public_key"`
	ShortID    string `json:"short_id"`
	ServerName string `json:"server_name"`
	DestHost   string `json:"dest_host"`
	DestAddr   string `json:"dest_addr"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: proxybench server | client -server FILE -socks ADDR -http ADDR")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "server":
		err = server(ctx)
	case "client":
		err = client(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

// server runs the destination (GET /bytes?n=N streams N bytes, /small 100
// bytes, /generate_204) and the xray server, prints serverInfo as JSON and
// runs until interrupted.
func server(ctx context.Context) error {
	chunk := make([]byte, 256<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(chunk)))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, string(chunk[:100])) })
	mux.HandleFunc("/generate_204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	defer srv.Close()

	x, err := xraytest.NewXray(xraytest.XrayOptions{Hosts: map[string]string{destHost: l.Addr().String()}})
	if err != nil {
		return err
	}
	defer x.Close()
	info := serverInfo{Host: x.Host, Port: x.Port, UserID: x.UserID, PublicKey: x.PublicKey, ShortID: x.ShortID,
		ServerName: x.ServerName, DestHost: destHost, DestAddr: l.Addr().String()}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// client runs the proxy service with literal server values until
// interrupted.
func client(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	serverFile := fs.String("server", "", "serverInfo JSON written by proxybench server")
	socks := fs.String("socks", "127.0.0.1:21080", "SOCKS5 listen address")
	httpL := fs.String("http", "127.0.0.1:28118", "HTTP listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*serverFile)
	if err != nil {
		return err
	}
	var info serverInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("parse %s: %w", *serverFile, err)
	}
	cfg := proxy.DefaultConfig()
	cfg.Enable = true
	cfg.SOCKS.Listen, cfg.HTTP.Listen = *socks, *httpL
	cfg.Server = proxy.ServerConfig{
		Address:   proxy.Value{Literal: info.Host},
		Port:      proxy.Value{Literal: strconv.Itoa(int(info.Port))},
		UserID:    proxy.Value{Literal: info.UserID},
		PublicKey: proxy.Value{Literal: info.PublicKey},
		ShortID:   proxy.Value{Literal: info.ShortID},
	}
	cfg.ServerName = info.ServerName
	cfg.HealthURL = "http://" + info.DestHost + "/generate_204"
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("service", proxy.Name)
	svc, err := proxy.New(service.Env{Logger: log, Now: time.Now, Health: service.NopHealth{}}, cfg)
	if err != nil {
		return err
	}
	return svc.Serve(ctx)
}
