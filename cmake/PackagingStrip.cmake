# CPack pre-build script (cmake/Packaging.cmake): strips the ELF files CPack staged for the
# packages (debug sections and the static symbol table; the dynamic symbols stay).
if(NOT CPACK_VS_STRIP OR NOT CPACK_TEMPORARY_INSTALL_DIRECTORY)
  return()
endif()
file(GLOB_RECURSE _files LIST_DIRECTORIES FALSE "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*")
foreach(_f IN LISTS _files)
  if(IS_SYMLINK "${_f}")
    continue()
  endif()
  file(READ "${_f}" _magic LIMIT 4 HEX)
  if(_magic STREQUAL "7f454c46")
    execute_process(COMMAND "${CPACK_VS_STRIP}" --strip-unneeded --remove-section=.comment
                            --remove-section=.note "${_f}"
                    RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "strip failed on ${_f}")
    endif()
  endif()
endforeach()
