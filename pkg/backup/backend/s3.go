package backend

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/internal/secrets"
)

// S3Options configures the S3 backend. Credentials come only from
// secret references, never from the repository URL.
type S3Options struct {
	// AccessKey and SecretKey are secret references (sops:, file:,
	// cred:, env:) to the key pair; default env:AWS_ACCESS_KEY_ID and
	// env:AWS_SECRET_ACCESS_KEY.
	AccessKey, SecretKey secrets.Ref
	// SessionToken is an optional reference to a temporary session token.
	SessionToken secrets.Ref
	// Region signs the requests; default $AWS_DEFAULT_REGION, else
	// us-east-1 (what S3-compatible servers accept).
	Region string
	// BucketLookup is "path" (http://HOST/BUCKET/KEY), "dns" (virtual
	// host: http://BUCKET.HOST/KEY) or "" (auto: dns for amazonaws.com,
	// path for every other server).
	BucketLookup string
	// StorageClass of the objects written (STANDARD, STANDARD_IA, ...);
	// default: the bucket's.
	StorageClass string
	// MultipartThreshold is the size above which a file is uploaded in
	// parts (large packs); default 64 MiB. Smaller files are one PUT.
	MultipartThreshold int
	// PartSize is the part size of multipart uploads; default 16 MiB
	// (S3's minimum is 5 MiB).
	PartSize int
	// PartUploads is how many parts of one file are uploaded at once;
	// default 4.
	PartUploads int
}

// S3 stores the repository under a prefix of an S3 bucket. Objects are
// written whole by one PUT (or a multipart upload for large packs), so
// no temporary names are needed: a reader never sees part of an object.
type S3 struct {
	loc       string
	bucket    string
	prefix    string // "" or "a/b/": prepended to every key
	client    *s3.Client
	http      HTTPOptions
	opts      S3Options
	closeFn   func()
	closeOnce sync.Once
}

var _ Backend = (*S3)(nil)
var _ BufferLoader = (*S3)(nil)
var _ WholeLoader = (*S3)(nil)

// ParseS3 splits an s3: repository URL into the endpoint (scheme and
// host), bucket and prefix. Forms: s3:https://HOST[:PORT]/BUCKET[/PREFIX],
// s3:http://..., and s3:HOST/BUCKET[/PREFIX] (https). User information
// (credentials) in the URL is refused.
func ParseS3(repoURL string) (endpoint *url.URL, bucket, prefix string, err error) {
	s, ok := strings.CutPrefix(repoURL, "s3:")
	if !ok {
		return nil, "", "", fmt.Errorf("repository url %q: not an s3: url", repoURL)
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, "", "", fmt.Errorf("parse repository url: %w", urlErr(err))
	}
	if u.User != nil {
		return nil, "", "", fmt.Errorf("repository url %s: credentials do not belong in the url: give secret references (S3 access key and secret key)", redactURL(u))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", "", fmt.Errorf("repository url %q: want s3:https://HOST/BUCKET/PREFIX or s3:http://...", repoURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, "", "", fmt.Errorf("repository url %q: query and fragment are not allowed", repoURL)
	}
	p := strings.Trim(path.Clean("/"+u.Path), "/")
	bucket, prefix, _ = strings.Cut(p, "/")
	if u.Host == "" || bucket == "" {
		return nil, "", "", fmt.Errorf("repository url %q: want s3:https://HOST/BUCKET/PREFIX", repoURL)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, bucket, prefix, nil
}

// urlErr drops the URL from a url.Parse error: it may hold a password.
func urlErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL prints u without its user information.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// OpenS3 returns the backend for an s3: repository URL. It resolves the
// credentials and makes no request.
func OpenS3(ctx context.Context, repoURL string, opts S3Options, hopts HTTPOptions, res *secrets.Resolver) (*S3, error) {
	ep, bucket, prefix, err := ParseS3(repoURL)
	if err != nil {
		return nil, err
	}
	loc := "s3:" + ep.String() + "/" + path.Join(bucket, prefix)
	hopts = hopts.withDefaults()
	if opts.AccessKey.IsZero() {
		opts.AccessKey = "env:AWS_ACCESS_KEY_ID"
	}
	if opts.SecretKey.IsZero() {
		opts.SecretKey = "env:AWS_SECRET_ACCESS_KEY"
	}
	if opts.PartSize <= 0 {
		opts.PartSize = 16 << 20
	}
	if opts.MultipartThreshold <= 0 {
		opts.MultipartThreshold = 64 << 20
	}
	if opts.PartUploads <= 0 {
		opts.PartUploads = 4
	}
	region := opts.Region
	if region == "" {
		if res != nil && res.Getenv != nil {
			region = res.Getenv("AWS_DEFAULT_REGION")
		}
		if region == "" {
			region = "us-east-1"
		}
	}
	var creds aws.Credentials
	if creds.AccessKeyID, err = resolveSecret(ctx, res, opts.AccessKey); err != nil {
		return nil, fmt.Errorf("open %s: access key: %w", loc, err)
	}
	if creds.SecretAccessKey, err = resolveSecret(ctx, res, opts.SecretKey); err != nil {
		return nil, fmt.Errorf("open %s: secret key: %w", loc, err)
	}
	if creds.SessionToken, err = resolveSecret(ctx, res, opts.SessionToken); err != nil {
		return nil, fmt.Errorf("open %s: session token: %w", loc, err)
	}
	creds.Source = "hostd secret references"
	pathStyle := true
	switch opts.BucketLookup {
	case "path":
	case "dns":
		pathStyle = false
	case "":
		pathStyle = !strings.HasSuffix(ep.Hostname(), ".amazonaws.com")
	default:
		return nil, fmt.Errorf("open %s: bucket lookup %q: want path, dns or empty", loc, opts.BucketLookup)
	}
	tr, err := newTransport(hopts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", loc, err)
	}
	hc := newWatchClient(tr, hopts)
	client := s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(ep.String()),
		UsePathStyle: pathStyle,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		HTTPClient: hc,
		// Retries are ours (retry), around whole operations including
		// the read of a body, with service.Backoff.
		Retryer: aws.NopRetryer{},
		// Every byte read is authenticated by the repository layer
		// (files are named by their hash, contents sealed), so neither
		// SigV4 payload hashes nor CRC trailers are computed: they would
		// cost CPU and buy nothing. Some S3-compatible servers reject
		// the trailers too.
		RequestChecksumCalculation:                aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation:                aws.ResponseChecksumValidationWhenRequired,
		DisableLogOutputChecksumValidationSkipped: true,
		ContinueHeaderThresholdBytes:              -1,
		Logger:                                    logging.Nop{},
		DisableS3ExpressSessionAuth:               aws.Bool(true),
	})
	return &S3{loc: loc, bucket: bucket, prefix: keyPrefix(prefix), client: client, http: hopts, opts: opts,
		closeFn: tr.CloseIdleConnections}, nil
}

func keyPrefix(p string) string {
	if p == "" {
		return ""
	}
	return p + "/"
}

// unsignedPayload sends UNSIGNED-PAYLOAD instead of hashing the body for
// the signature (see the comment on the checksums in OpenS3).
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// Location returns the URL (it never holds credentials).
func (s *S3) Location() string { return s.loc }

// PackSizeHint returns RemotePackSize.
func (s *S3) PackSizeHint() int { return RemotePackSize }

func (s *S3) key(h Handle) string { return s.prefix + h.relPath() }

// s3Err maps a missing object to ErrNotExist.
func s3Err(err error) error {
	if err == nil {
		return nil
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var sc statusCoder
	if errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &sc) && sc.HTTPStatusCode() == http.StatusNotFound) {
		return fmt.Errorf("%w (%v)", fs.ErrNotExist, err)
	}
	return err
}

func (s *S3) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return retry(ctx, s.http, fn)
}

// Create checks that the prefix holds no repository and nothing else,
// and creates the bucket when it does not exist.
func (s *S3) Create(ctx context.Context) error {
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
		return s3Err(err)
	})
	if errors.Is(err, fs.ErrNotExist) {
		in := &s3.CreateBucketInput{Bucket: &s.bucket}
		if r := s.client.Options().Region; r != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
		}
		err = s.do(ctx, func(ctx context.Context) error {
			_, err := s.client.CreateBucket(ctx, in)
			var owned *types.BucketAlreadyOwnedByYou
			if errors.As(err, &owned) {
				return nil
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("create repository %s: bucket %s: %w", s.loc, s.bucket, err)
	}
	if _, err := s.Stat(ctx, Handle{Type: Config}); err == nil {
		return fmt.Errorf("create repository %s: %w", s.loc, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create repository %s: %w", s.loc, err)
	}
	var names []string
	err = s.do(ctx, func(ctx context.Context) error {
		names = names[:0]
		out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix), Delimiter: aws.String("/"), MaxKeys: aws.Int32(100)})
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			names = append(names, strings.TrimPrefix(aws.ToString(o.Key), s.prefix))
		}
		for _, p := range out.CommonPrefixes {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), s.prefix), "/"))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create repository %s: %w", s.loc, err)
	}
	return checkForeign(s.loc, names)
}

// Save uploads data under h: one PUT, or a multipart upload of
// PartUploads parts at a time when data is larger than
// MultipartThreshold.
func (s *S3) Save(ctx context.Context, h Handle, data []byte) error {
	if len(data) > s.opts.MultipartThreshold {
		if err := s.saveMultipart(ctx, h, data); err != nil {
			return fmt.Errorf("save %s: %w", h, err)
		}
		return nil
	}
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(h)), ContentLength: aws.Int64(int64(len(data)))}
	if s.opts.StorageClass != "" {
		in.StorageClass = types.StorageClass(s.opts.StorageClass)
	}
	err := s.do(ctx, func(ctx context.Context) error {
		in.Body = bytes.NewReader(data)
		_, err := s.client.PutObject(ctx, in, unsignedPayload)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	return nil
}

func (s *S3) saveMultipart(ctx context.Context, h Handle, data []byte) error {
	key := s.key(h)
	cin := &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key}
	if s.opts.StorageClass != "" {
		cin.StorageClass = types.StorageClass(s.opts.StorageClass)
	}
	var id string
	err := s.do(ctx, func(ctx context.Context) error {
		out, err := s.client.CreateMultipartUpload(ctx, cin)
		if err == nil {
			id = aws.ToString(out.UploadId)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", err)
	}
	n := (len(data) + s.opts.PartSize - 1) / s.opts.PartSize
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.PartUploads)
	for i := range n {
		part := data[i*s.opts.PartSize : min((i+1)*s.opts.PartSize, len(data))]
		g.Go(func() error {
			return s.do(gctx, func(ctx context.Context) error {
				out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: &key, UploadId: &id,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))}, unsignedPayload)
				if err != nil {
					return fmt.Errorf("part %d: %w", i+1, err)
				}
				parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
				return nil
			})
		})
	}
	err = g.Wait()
	if err == nil {
		err = s.do(ctx, func(ctx context.Context) error {
			_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &id,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			return err
		})
	}
	if err != nil {
		// Best effort: an upload left behind is listed by ListTemp and
		// removed by prune.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.http.OpTimeout)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &id})
		return err
	}
	return nil
}

// Load reads length bytes of h at offset (length 0: to the end, within
// FileLimit).
func (s *S3) Load(ctx context.Context, h Handle, offset int64, length int) ([]byte, error) {
	return remoteLoad(ctx, s, h, offset, length)
}

// LoadInto reads len(buf) bytes of h at offset into buf with one ranged
// GET, checking that the server answered the range asked for.
func (s *S3) LoadInto(ctx context.Context, h Handle, offset int64, buf []byte) error {
	return remoteLoadInto(ctx, s.http, h, offset, buf, s.getRange(h))
}

// OpenRange starts reading length bytes of h at offset with one ranged
// GET (see RangeReader).
func (s *S3) OpenRange(ctx context.Context, h Handle, offset, length int64) (io.ReadCloser, error) {
	return remoteOpenRange(ctx, s.http, h, offset, length, s.getRange(h))
}

// getRange returns the ranged GET of h.
func (s *S3) getRange(h Handle) func(ctx context.Context, rng string) (ranged, error) {
	return func(ctx context.Context, rng string) (ranged, error) {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(h)), Range: &rng})
		if err != nil {
			return ranged{}, s3Err(err)
		}
		status := http.StatusPartialContent
		if out.ContentRange == nil {
			status = http.StatusOK
		}
		length := int64(-1)
		if out.ContentLength != nil {
			length = *out.ContentLength
		}
		return ranged{body: out.Body, status: status, contentRange: aws.ToString(out.ContentRange), length: length}, nil
	}
}

// LoadWhole reads all of h with one GET, refusing a file over limit
// before reading it.
func (s *S3) LoadWhole(ctx context.Context, h Handle, limit int64) ([]byte, error) {
	return remoteLoadWhole(ctx, s.http, h, limit, func(ctx context.Context) (io.ReadCloser, int64, error) {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(h))})
		if err != nil {
			return nil, 0, s3Err(err)
		}
		size := int64(-1)
		if out.ContentLength != nil {
			size = *out.ContentLength
		}
		return out.Body, size, nil
	})
}

// Stat returns the size of h.
func (s *S3) Stat(ctx context.Context, h Handle) (int64, error) {
	var size int64
	err := s.do(ctx, func(ctx context.Context) error {
		out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(h))})
		if err != nil {
			return s3Err(err)
		}
		if out.ContentLength == nil || *out.ContentLength < 0 {
			return permanent{errors.New("server gave no size")}
		}
		size = *out.ContentLength
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", h, err)
	}
	return size, nil
}

// maxListed bounds one listing: a server that lists without end (a
// repeated continuation token, endless names) fails the listing instead
// of holding hostd in it. 10 million packs of 4 MiB are 40 TB.
const maxListed = 10_000_000

// list calls fn for every object below dir (a prefix relative to the
// repository, ending in "/", or "" for the root only when flat).
func (s *S3) list(ctx context.Context, dir string, flat bool, fn func(rel string, size int64, mod time.Time) error) error {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + dir)}
	if flat {
		in.Delimiter = aws.String("/")
	}
	seen := map[string]bool{}
	count := 0
	for {
		var out *s3.ListObjectsV2Output
		err := s.do(ctx, func(ctx context.Context) error {
			var err error
			out, err = s.client.ListObjectsV2(ctx, in)
			return err
		})
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			if count++; count > maxListed {
				return fmt.Errorf("more than %d objects under %s%s", maxListed, s.prefix, dir)
			}
			rel, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok {
				continue // not asked for: a hostile or broken server
			}
			if err := fn(rel, aws.ToInt64(o.Size), aws.ToTime(o.LastModified)); err != nil {
				return err
			}
		}
		tok := aws.ToString(out.NextContinuationToken)
		if !aws.ToBool(out.IsTruncated) || tok == "" {
			return nil
		}
		if seen[tok] {
			return fmt.Errorf("server repeated continuation token %q", tok)
		}
		seen[tok] = true
		in.ContinuationToken = &tok
	}
}

// List calls fn for each file of type t.
func (s *S3) List(ctx context.Context, t FileType, fn func(string, int64) error) error {
	err := s.list(ctx, string(t)+"/", false, func(rel string, size int64, _ time.Time) error {
		name := path.Base(rel)
		if isTemp(name) || rel != (Handle{Type: t, Name: name}).relPath() {
			return nil // not a repository file of this type
		}
		return fn(name, size)
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// Remove deletes h with one DELETE. S3 answers a delete of a missing
// key with success, so removing a missing file is not an error here
// (the local and SFTP backends return ErrNotExist).
func (s *S3) Remove(ctx context.Context, h Handle) error {
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(h))})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

// uploadTemp is the base name ListTemp gives an unfinished multipart
// upload: .tmp-upload-BASE64(upload id)-NAME.
const uploadTemp = ".tmp-upload-"

// ListTemp reports objects with temporary names (hostd writes none; an
// other tool, or whoever holds the bucket, may) and multipart uploads
// that were started and never completed (a backup killed during one).
func (s *S3) ListTemp(ctx context.Context, fn func(TempFile) error) error {
	for _, d := range tempDirs() {
		dir := d + "/"
		if d == "." {
			dir = ""
		}
		err := s.list(ctx, dir, d == ".", func(rel string, size int64, mod time.Time) error {
			if !isTemp(path.Base(rel)) {
				return nil
			}
			return fn(TempFile{Path: rel, Size: size, ModTime: mod})
		})
		if err != nil {
			return fmt.Errorf("list temporary files: %w", err)
		}
	}
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: aws.String(s.prefix)}
	for pages := 0; ; pages++ {
		if pages > maxListed/1000 {
			return errors.New("list unfinished uploads: too many pages")
		}
		var out *s3.ListMultipartUploadsOutput
		err := s.do(ctx, func(ctx context.Context) error {
			var err error
			out, err = s.client.ListMultipartUploads(ctx, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("list unfinished uploads: %w", err)
		}
		for _, u := range out.Uploads {
			rel, ok := strings.CutPrefix(aws.ToString(u.Key), s.prefix)
			if !ok || aws.ToString(u.UploadId) == "" || rel == "" {
				continue
			}
			p := path.Join(path.Dir(rel), uploadTemp+base64.RawURLEncoding.EncodeToString([]byte(aws.ToString(u.UploadId)))+"-"+path.Base(rel))
			if err := fn(TempFile{Path: p, ModTime: aws.ToTime(u.Initiated)}); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || (aws.ToString(out.NextKeyMarker) == "" && aws.ToString(out.NextUploadIdMarker) == "") {
			return nil
		}
		if aws.ToString(out.NextKeyMarker) == aws.ToString(in.KeyMarker) && aws.ToString(out.NextUploadIdMarker) == aws.ToString(in.UploadIdMarker) {
			return errors.New("list unfinished uploads: server repeated its marker")
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// RemoveTemp deletes the temporary object rel, or aborts the unfinished
// upload ListTemp named rel.
func (s *S3) RemoveTemp(ctx context.Context, rel string) error {
	if err := checkTemp(rel); err != nil {
		return err
	}
	base := path.Base(rel)
	if rest, ok := strings.CutPrefix(base, uploadTemp); ok {
		enc, name, ok := strings.Cut(rest, "-")
		id, err := base64.RawURLEncoding.DecodeString(enc)
		if !ok || err != nil || name == "" {
			return fmt.Errorf("remove temporary file %q: not an upload ListTemp named", rel)
		}
		key := s.prefix + path.Join(path.Dir(rel), name)
		err = s.do(ctx, func(ctx context.Context) error {
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: aws.String(string(id))})
			return s3Err(err)
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove temporary file: abort upload: %w", err)
		}
		return nil
	}
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + rel)})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	return nil
}

// Close releases idle connections.
func (s *S3) Close() error {
	s.closeOnce.Do(s.closeFn)
	return nil
}
