/** The spellings of a service's name that its files use. */
export function pascal(name: string): string {
  return name
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

export function camel(name: string): string {
  const spelled = pascal(name);
  return spelled.charAt(0).toLowerCase() + spelled.slice(1);
}

/** As words in a sentence: `film studio`. */
export function words(name: string): string {
  return name.replace(/_/g, ' ');
}

/** As a title: `Film studios`. */
export function title(name: string): string {
  const spelled = words(name);
  return spelled.charAt(0).toUpperCase() + spelled.slice(1);
}
