# Debian packages (CPack DEB, one package per install component). deploy/package.sh builds
# them; tests/packaging checks them. Each package exists only when its part is built:
#
#   postgresql-<PG>-vectorscale          component `vectorscale`: vectorscale.so, control, SQL,
#                                        in the directories pg_config names
#   postgresql-<PG>-vectorscale-vector   component `vector`: the bundled pgvector-compatible type
#   vectorscale-gpu-builder              component `gpu_builder`: the service, its systemd unit,
#                                        /etc/vectorscale/gpu-builder.conf (a conffile)
#
# The vector type is a package of its own because it ships the same files as pgvector
# (vector.so, vector.control): the extension depends on "ours | pgvector", so apt keeps a
# pgvector that is installed and installs ours only where none is; ours conflicts with
# pgvector so that dpkg never lets one overwrite the other's files (DESIGN.md §9).
#
# Runtime library dependencies (libgrpc++, libprotobuf, libstdc++, ...) come from
# dpkg-shlibdeps. A CUDA runtime linked dynamically from NVIDIA's toolkit belongs to no
# Debian package; dpkg-shlibdeps skips it (--ignore-missing-info), so it stays a documented
# requirement of the GPU host rather than a Depends.
set(_vs_components)
if(TARGET vectorscale)
  list(APPEND _vs_components vectorscale)
endif()
if(TARGET vector)
  list(APPEND _vs_components vector)
endif()
if(TARGET gpu_builder)
  list(APPEND _vs_components gpu_builder)
endif()
if(NOT _vs_components)
  return()
endif()

set(VS_PACKAGE_MAINTAINER "vectorscale maintainers <maintainers@users.noreply.b-seed-c4fbd4c5.example>"
    CACHE STRING "Maintainer field of the Debian packages")
set(VS_PACKAGE_RELEASE 1 CACHE STRING "Debian revision of the packages (the part after the -)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vectorscale)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${VS_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL ${_vs_components})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <package>_<version>-<release>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE ${VS_PACKAGE_RELEASE})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Strip what the install step put into the staging tree (shared objects and executables alike,
# including the vector module that its install script copies), as dh_strip would.
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/PackagingStrip.cmake)
set(CPACK_VS_STRIP "${CMAKE_STRIP}")

set(VS_DEB_VERSION ${PROJECT_VERSION}-${VS_PACKAGE_RELEASE})  # for tests/packaging
set(VS_PG_MAJOR -)
if(VS_PG_VERSION MATCHES "^PostgreSQL ([0-9]+)")
  set(_pg ${CMAKE_MATCH_1})
  set(VS_PG_MAJOR ${_pg})
  set(_pg_pkg postgresql-${_pg})
  set(CPACK_DEBIAN_VECTORSCALE_PACKAGE_NAME ${_pg_pkg}-vectorscale)
  set(CPACK_DEBIAN_VECTORSCALE_PACKAGE_SECTION database)
  set(CPACK_DEBIAN_VECTORSCALE_PACKAGE_DEPENDS
      "${_pg_pkg}, ${_pg_pkg}-vectorscale-vector | ${_pg_pkg}-pgvector")
  set(CPACK_COMPONENT_VECTORSCALE_DESCRIPTION
      "StreamingDiskANN vector index for PostgreSQL ${_pg}
The vectorscale extension adds the index access method diskann (a Vamana graph
with Statistical Binary Quantization and filtered search) over pgvector's
vector type. Index builds can be offloaded to a vectorscale-gpu-builder
service (diskann.builder_endpoint).")

  set(CPACK_DEBIAN_VECTOR_PACKAGE_NAME ${_pg_pkg}-vectorscale-vector)
  set(CPACK_DEBIAN_VECTOR_PACKAGE_SECTION database)
  set(CPACK_DEBIAN_VECTOR_PACKAGE_DEPENDS "${_pg_pkg}")
  set(CPACK_DEBIAN_VECTOR_PACKAGE_CONFLICTS "${_pg_pkg}-pgvector")
  set(CPACK_DEBIAN_VECTOR_PACKAGE_REPLACES "${_pg_pkg}-pgvector")
  set(CPACK_COMPONENT_VECTOR_DESCRIPTION
      "pgvector-compatible vector type for PostgreSQL ${_pg} (bundled with vectorscale)
The vector extension with pgvector's type name, binary layout, text format,
casts, distance operators and functions, for systems without pgvector. Data
moves between it and pgvector with pg_dump. It has no ivfflat or hnsw index:
where those are needed, install ${_pg_pkg}-pgvector instead.")
endif()

set(CPACK_DEBIAN_GPU_BUILDER_PACKAGE_NAME vectorscale-gpu-builder)
set(CPACK_DEBIAN_GPU_BUILDER_PACKAGE_SECTION database)
set(CPACK_DEBIAN_GPU_BUILDER_PACKAGE_DEPENDS adduser)
set(CPACK_COMPONENT_GPU_BUILDER_DESCRIPTION
    "index build service for the vectorscale PostgreSQL extension
gpu_builder receives vectors from PostgreSQL over gRPC and returns finished
diskann index pages, built on a GPU or on its own CPUs. Installed as a systemd
service (vectorscale-gpu-builder) running as user vectorscale-builder,
configured in /etc/vectorscale/gpu-builder.conf; not enabled until the
administrator enables it.")
set(VS_DEB_PACKAGES)  # the package names, for tests/packaging
foreach(_c IN LISTS _vs_components)
  string(TOUPPER ${_c} _up)
  list(APPEND VS_DEB_PACKAGES ${CPACK_DEBIAN_${_up}_PACKAGE_NAME})
endforeach()

set(_vs_conffiles ${PROJECT_BINARY_DIR}/packaging/gpu_builder/conffiles)
file(WRITE ${_vs_conffiles} "/etc/vectorscale/gpu-builder.conf\n")
set(_vs_scripts ${PROJECT_SOURCE_DIR}/deploy/debian/vectorscale-gpu-builder)
set(CPACK_DEBIAN_GPU_BUILDER_PACKAGE_CONTROL_EXTRA
    ${_vs_conffiles} ${_vs_scripts}/postinst ${_vs_scripts}/prerm ${_vs_scripts}/postrm)

include(CPack)
