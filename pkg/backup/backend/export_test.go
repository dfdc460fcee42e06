package backend

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3PutRaw writes an object at the slash path rel inside the repository,
// past the backend's own naming (tests plant temporary files with it).
func S3PutRaw(ctx context.Context, be *S3, rel string, data []byte) error {
	_, err := be.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &be.bucket, Key: aws.String(be.prefix + rel),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))}, unsignedPayload)
	return err
}

// S3StartUpload starts a multipart upload of the repository file at rel
// and leaves it unfinished, as a backup killed during one does.
func S3StartUpload(ctx context.Context, be *S3, rel string) error {
	_, err := be.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &be.bucket, Key: aws.String(be.prefix + rel)})
	return err
}
