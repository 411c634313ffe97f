{#- The contract's alarm class: lower(severity) when emergency, error or warning, else other. -#}
{% macro severity_class(normalized_severity) -%}
    case
        when {{ normalized_severity }} in ('emergency', 'error', 'warning')
            then {{ normalized_severity }}
        else 'other'
    end
{%- endmacro %}

{#- A device that sends only its serial gets a stable negative id derived from the serial
    (numeric legacy ids are positive), the same in every batch split and rebuild. -#}
{% macro device_id_from_serial(serial) -%}
    -1 - (hashtextextended({{ serial }}, 0) & 1152921504606846975)
{%- endmacro %}
