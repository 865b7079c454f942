/**
 * @module metadata/types — the normalised metadata the metadata stage stores and publishes.
 */

/** GPS position as signed decimal degrees (south and west negative). */
export interface GpsPosition {
  lat: number;
  lon: number;
}

/** Normalised metadata (images.metadata). */
export interface ImageMetadata {
  /** EXIF IFD0 Make, trimmed; null when absent. */
  make: string | null;
  /** EXIF IFD0 Model, trimmed; null when absent. */
  model: string | null;
  /** DateTimeOriginal as ISO local time ("2008-03-15T09:52:01"), with the offset appended when OffsetTimeOriginal exists. */
  takenAt: string | null;
  /** EXIF Orientation 1-8; null when absent. */
  orientation: number | null;
  gps: GpsPosition | null;
  /** JSON-safe raw subset of what exifr read (no binary blobs, no thumbnails). */
  exif: Record<string, unknown>;
  /** True when a metadata block was present but could not be read completely. */
  partial: boolean;
}

/** What the metadata stage learns from one image. */
export interface ExtractedImage {
  width: number;
  height: number;
  /** jpeg, png, webp, gif, tiff, heic, avif, ... */
  format: string;
  metadata: ImageMetadata;
}

/** Metadata of an image that carries none. */
export function emptyMetadata(): ImageMetadata {
  return {
    make: null,
    model: null,
    takenAt: null,
    orientation: null,
    gps: null,
    exif: {},
    partial: false,
  };
}
