-- One database per service, as AUTH_DATABASE_URL and DOWNLOAD_DATABASE_URL in docker-compose.yml expect.
CREATE DATABASE mediadl_auth OWNER mediadl;
CREATE DATABASE mediadl_download OWNER mediadl;
