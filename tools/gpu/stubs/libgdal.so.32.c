/* Real definitions that the libgdal stub keeps (tools/gpu/stub_library.py --override).
 * Debian's OpenCV 4.6 registers GdalDecoder among the default decoders (imgcodecs loadsave.cpp,
 * ImageCodecInitializer), and GdalDecoder's constructor calls GDALAllRegister(), so every process that
 * decodes an image calls it once. It only fills GDAL's own driver registry, which nothing but GDALOpen
 * reads; GdalDecoder::checkSignature compares bytes ("NITF" at offset 0, "DTED" at 140) without GDAL,
 * and GDALOpen (still an aborting stub) is only reached when a NITF/DTED file is decoded, which the
 * GPU runs never do. A no-op is therefore exact for every path they take. */
void vlm_gdal_all_register(void) __asm__("GDALAllRegister");
void vlm_gdal_all_register(void) {}
