"""Forms (RFC 7578 multipart/form-data, URL-encoded) through every door."""
