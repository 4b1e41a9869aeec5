-- AlterEnum
ALTER TYPE "ArtifactKind" ADD VALUE 'model';

-- AlterTable
ALTER TABLE "datasets" ADD COLUMN     "archive_format" TEXT,
ADD COLUMN     "archive_sha256" TEXT,
ADD COLUMN     "archive_size" BIGINT,
ADD COLUMN     "archive_uri" TEXT;

